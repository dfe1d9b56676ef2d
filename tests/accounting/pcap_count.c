/* libpcap's own count of a capture's packets, the reference for tests/accounting: prints the
 * number of records pcap_next_ex returns before the end of the file or its first error (a cut
 * last record ends the count, as it ends closetap's replay), then "eof" or "error" (how the
 * reading ended), then the path. Exit 1 when libpcap cannot open it. */
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) {
        char err[PCAP_ERRBUF_SIZE] = {0};
        pcap_t* p = pcap_open_offline(argv[i], err);
        if (p == NULL) {
            fprintf(stderr, "pcap_count: %s: %s\n", argv[i], err);
            return 1;
        }
        struct pcap_pkthdr* h;
        const u_char* d;
        unsigned long long n = 0;
        int rc;
        while ((rc = pcap_next_ex(p, &h, &d)) == 1) n++;
        printf("%llu %s %s\n", n, rc == PCAP_ERROR ? "error" : "eof", argv[i]);
        pcap_close(p);
    }
    return 0;
}
