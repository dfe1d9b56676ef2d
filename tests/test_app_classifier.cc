// Application classifier: every default signature against real first-payload bytes (from the
// shared Zeek and Suricata captures, from curl, or written from the protocol specs where no
// capture exists), in both directions, and every sample against every signature alone.
#include "pipeline/app_classifier.hh"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace closetap {
namespace {

struct Sample {
    const char* label;   // expected app ("" = unknown)
    const char* source;  // capture and connection, or "spec: ..." for bytes written from the spec
    bool from_orig;      // which side sent it
    uint16_t server_port;
    const char* hex;  // the first payload bytes of that side (cut to at most ~320 bytes)
};

// Captures: /work/shared/corpus/{zeek,suricata-verify}/pcaps/<name>.pcap, "o"/"r" = the
// originator's / responder's first payload, "#n" = the n-th connection with one. curl: what
// curl 7.88 sent to a local listener. "spec": bytes built from the protocol's specification.
const Sample samples[] = {
    {"http", "http__get o #0", true, 80,
     "474554202f646f776e6c6f61642f4348414e4745532e62726f2d6175782e74787420485454502f312e310d0a"
     "557365722d4167656e743a20576765742f312e3134202864617277696e31322e322e30290d0a416363657074"
     "3a202a2f2a0d0a486f73743a2062726f2e6f72670d0a436f6e6e656374696f6e3a204b6565702d416c697665"
     "0d0a0d0a"},
    {"http", "http__get r #0", false, 80,
     "485454502f312e3120323030204f4b0d0a446174653a205468752c203037204d617220323031332032313a34"
     "333a303720474d540d0a5365727665723a204170616368652f322e342e3320284665646f7261290d0a4c6173"
     "742d4d6f6469666965643a205765642c2032392041756720323031322032333a34393a323720474d540d0a45"
     "5461673a2022313236312d34633837303335386136666330220d0a4163636570742d52616e6765733a206279"
     "7465730d0a436f6e74656e742d4c656e6774683a20343730"},
    {"http", "http__connect-with-header o #0", true, 80,
     "434f4e4e454354207365637572652e6e65776567672e636f6d3a34343320485454502f312e310d0a55736572"
     "2d4167656e743a204d6f7a696c6c612f352e3020284d6163696e746f73683b20496e74656c204d6163204f53"
     "20582031302e31303b2072763a34312e3029204765636b6f2f32303130303130312046697265666f782f3431"
     "2e300d0a50726f78792d436f6e6e656374696f6e3a206b6565702d616c6976650d0a436f6e6e656374696f6e"
     "3a206b6565702d616c6976650d0a486f73743a207365637572652e6e65776567672e636f6d3a3434330d0a0d"
     "0a"},
    {"http", "decode-teredo-01 o #0", true, 80,
     "504f5354202f6367692d62696e2f696176733473746174732e63676920485454502f312e300d0a436f6e7465"
     "6e742d547970653a2069617673342f73746174730d0a436f6e74656e742d4c656e6774683a203538390d0a55"
     "7365722d4167656e743a2053796e6365722f342e3830202861765f70726f2d313136393b66290d0a486f7374"
     "3a20646f776e6c6f61643931332e61766173742e636f6d0d0a436f6e6e656374696f6e3a204b6565702d416c"
     "6976650d0a507261676d613a206e6f2d63616368650d0a0d0a"},
    {"http", "decode-teredo-01 r #0", false, 80,
     "485454502f312e31203230340d0a446174653a204672692c203136204d617920323030382031353a35303a35"
     "3420474d540d0a5365727665723a204170616368650d0a436f6e74656e742d4c656e6774683a20300d0a4b65"
     "65702d416c6976653a2074696d656f75743d31352c206d61783d3130300d0a43"},
    {"http", "http__connect-with-smtp o #0", true, 8240,
     "434f4e4e454354206d61696c696e30332e73756c2e742d6f6e6c696e652e64653a3235202f20485454502f31"
     "2e300d0a4d6f7a696c6c6120342e302028636f6d70617469626c653b204d53494520352e30313b2057696e64"
     "6f7773204e5420352e30290d0a0d0a"},
    {"tls", "tls__https-to-http o #0", true, 80,
     "1603010200010001fc03037dc7ecbe48e3c076f7714e001bb00e543354d6953ac39832178880d28e217cc620"
     "0ac82b72e213e648a6b82dec6434fb5362a49ef5133632f196a93f6548a3ca23003e130213031301c02cc030"
     "009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d"
     "003c0035002f00ff01000175000b000403000102000a00160014001d0017001e001900180100010101020103"
     "01040010000e000c02683208687474702f312e31001600000017000000310000000d002a0028040305030603"
     "080708080809080a080b080408050806040105010601030303010302040205020602002b0005040304030300"
     "2d00020101003300260024001d00204c31bf439e436b32ba01889dd3b1c0b08682852aa1"},
    {"tls", "community-id-ipv6 o #0", true, 443,
     "16030101130100010f0303f8eb97c1cf968564200e3ac75ce74f3be694a92ea17d03afce58225d1cd665e320"
     "51c627d7d3b91ac53a0eb982517d2ec32225cd5aec60010277432a7bbe41dade0026c02bc02fc02cc030cca9"
     "cca8c009c013c00ac014009c009d002f0035c012000a130113021303010000a00000000f000d00000a646e73"
     "2e676f6f676c65000500050100000000000a000a0008001d001700180019000b00020100000d001a00180804"
     "04030807080508060401050106010503060302010203ff01000100001700000010000e000c02683208687474"
     "702f312e3100120000002b00050403040303003300260024001d0020c727b4a5d614e9487af6a4edb2258b06"
     "6d69978519a9f6a31119f04443dadc7d"},
    {"tls", "community-id-ipv6 r #0", false, 443,
     "160303007a020000760303e52a330da3744c9ea8ea9175af833ea0bbb75547ad763564c89f11a0046ea06920"
     "51c627d7d3b91ac53a0eb982517d2ec32225cd5aec60010277432a7bbe41dade130100002e00330024001d00"
     "206be604cf61265e554b2204ec2e6ce7b7ea35ae5fa9b4c3c537cd057c67276b6a002b000203041403030001"
     "01170303124a4243f0e0ecb3094fe08a05d880efd36b69f3663cd229716cee915c4ce0ad097b04749e1995fd"
     "6452508d8a1098705e48c651f6fa4baff33715c14b0bc6d21f6a30cf216d750b9599a76ddb4af99a5bafc1e6"
     "2172dd3ef037dd2d078cc92f234f160e4a6b62586f6657094d0262cc25927b0643bff32e15e3070858cb1293"
     "1e70fefb068d3edb3181dfe96d3f34ed7fa7513b778fbd3d28382934d37bbd21bebeebf9"},
    {"tls", "bug-2646-01 r #0", false, 443,
     "16030300450200004103030690466dcf72c3ae6d1e49e43cef1624db28c2eb9ec4d5d6dfc9cc13a940fa3600"
     "c02f000019ff0100010000000000000b00040300010200230000001700001603030c6e0b000c6a000c670007"
     "ac308207a830820690a0030201020210083a84592f77f2e7951bf887cedec966300d06092a864886f70d0101"
     "0b05003070310b300906035504061302555331153013060355040a130c446967694365727420496e63311930"
     "17060355040b13107777772e64696769636572742e636f6d312f302d06035504031326446967694365727420"
     "534841322048696768204173737572616e636520536572766572204341301e170d3137303332333030303030"
     "305a170d3230303531333132303030305a306a310b300906035504061302555331133011"},
    {"ssh", "ssh__ssh.client-side-half-duplex o #0", true, 22,
     "5353482d322e302d4f70656e5353485f352e390d0a"},
    {"ssh", "ssh__ssh.client-side-half-duplex o #2", true, 22,
     "5353482d312e352d4f70656e5353485f362e320a"},
    {"ssh", "http__http-to-ssh r #0", false, 22,
     "5353482d322e302d4f70656e5353485f392e367031205562756e74752d337562756e747531332e380d0a"},
    {"smtp", "smtp-eve r #0", false, 25,
     "3232302d786339302e7765627369746577656c636f6d652e636f6d2045534d5450204578696d20342e363920"
     "2331204d6f6e2c203035204f637420323030392030313a30353a3534202d30353030200d0a3232302d576520"
     "646f206e6f7420617574686f72697a652074686520757365206f6620746869732073797374656d20746f2074"
     "72616e73706f727420756e736f6c6963697465642c200d0a32323020616e642f6f722062756c6b20652d6d61"
     "696c2e0d0a"},
    {"smtp", "smtp-eve o #0", true, 25, "45484c4f2047500d0a"},
    {"ftp", "ftp__ipv4 r #0", false, 21,
     "323230206674702e4e65744253442e6f7267204654502073657276657220284e65744253442d667470642032"
     "30313030333230292072656164792e0d0a"},
    {"ftp", "ftp__ftp-auth-tls r #0", false, 21, "323230202876734654506420332e302e35290d0a"},
    {"pop3", "pop3__pop3 r #0", false, 110,
     "2b4f4b20504f50207365727665722072656164792048206d696d61703420304d486f55722d31564478524433"
     "5569352d3030336571320d0a"},
    {"imap", "imap-detection r #0", false, 143,
     "2a204f4b204d6963726f736f66742045786368616e676520494d415034726576312073657276657220766572"
     "73696f6e20352e352e323635302e32332028756d722d6d61696c3032292072656164790d0a"},
    {"redis", "redis__django-cloud o #0", true, 10625,
     "2a320d0a24330d0a4745540d0a2431340d0a3a313a666163746f7269616c5f330d0a"},
    {"postgresql", "pgsql__pgsql-upgrade-tls o #0", true, 5432, "0000000804d2162f"},
    {"postgresql", "pgsql__pgsql-upgrade-tls o #1", true, 5432,
     "00000055000300007573657200726570006461746162617365007265706c69636174696f6e007265706c6963"
     "6174696f6e0074727565006170706c69636174696f6e5f6e616d650077616c72656365697665720000"},
    {"mysql", "mysql__encrypted r #0", false, 3306,
     "6a0000000a352e352e352d31302e302e33362d4d6172696144422d307562756e7475302e31362e30342e3100"
     "21000000746e4e762c74276000ffff2d02003fe0150000000000000000000031726b4144702b23696a5a6500"
     "6d7973716c5f6e61746976655f70617373776f726400"},
    {"dns", "dns__task-7018-ids-dns-keywords o #0", true, 53,
     "001d00000100000100000000000008737572696361746102696f0000010001"},
    {"dns", "dns__task-7018-ids-dns-keywords r #0", false, 53,
     "002d00008180000100010000000008737572696361746102696f0000010001c00c00010001000001ea000423"
     "d4002c"},
    {"", "ftp__ipv4 o #0", true, 21, "5553455220616e6f6e796d6f75730d0a"},
    {"", "ftp__ipv4 r #1", false, 56666,
     "746f74616c2039383032380d0a6c727778727778722d7820203120726f6f742020776865656c202020202020"
     "202020333220417567203136202032303039202e6d657373616765202d3e207075622f4e65744253442f5245"
     "41444d452e6578706f72742d636f6e74726f6c0d0a64727778722d782d2d7820203320726f6f742020776865"
     "656c202020202020202035313220417567203136202032303039206574630d0a2d72772d72772d722d2d2020"
     "31203630302020206e657462736420203530313538363935"},
    {"", "ftp__ipv4 r #2", false, 56667,
     "557365722d6167656e743a202a0a446973616c6c6f773a202a2e74677a0a446973616c6c6f773a202a2e677a"
     "0a446973616c6c6f773a202a2e74627a0a446973616c6c6f773a202a2e627a320a"},
    {"", "pop3__pop3 o #0", true, 110, "434150410d0a"},
    {"", "imap-detection o #0", true, 143, "6130303030204341504142494c4954590d0a"},
    {"", "ldap__simpleauth o #0", true, 3268,
     "3032020101602d020103041c78787878787878787878784078782e7878782e78787878782e6e6574800a7061"
     "7373776f72386431"},
    {"", "ldap__simpleauth r #0", false, 3268, "3084000000100201016184000000070a010004000400"},
    {"", "ldap__ldap-starttls o #0", true, 389,
     "301d02010177188016312e332e362e312e342e312e313436362e3230303337"},
    {"", "krb__optional-service-name o #0", true, 88,
     "0000006a6a683066a103020105a20302010aa45a3058a00703050040000010a21a1b186b65726265726f735f"
     "7265616c6d5f74696d652e6e61736ca511180f32303337303931333032343830355aa611180f323033373039"
     "31333032343830355aa704020265d5a805300302010b"},
    {"", "krb__optional-service-name r #0", false, 88,
     "000000567e543052a003020105a10302011ea411180f32303132303331363137323934365aa50502030a27db"
     "a60302013ca9091b074845432e4e4554aa1c301aa003020102a11330111b066b72627467741b074845432e4e"
     "4554"},
    {"", "smb1-02__smb1_osx o #0", true, 445,
     "0000002fff534d4272000000000801c8000000000000000000000000ffff0100ffff0000000c00024e54204c"
     "4d20302e313200"},
    {"", "smb1-02__smb1_osx r #0", false, 445,
     "0000009fff534d4272000000008801c8000000000000000000000000ffff0100ffff00001100000332000100"
     "044100000000010050780000fdf30080302f1884cbbad301c4ff005a00747334313200000000000000000000"
     "00604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa32a3028a0261b246e6f745f64"
     "6566696e65645f696e5f5246433431373840706c656173655f69676e6f7265"},
    {"", "smb2-04__20171220_smb_at_schedule o #0", true, 445,
     "00000082fe534d4240000100000000000500010000000000000000000a00000000000000fffe000001000000"
     "6100000000040000000000000000000000000000000000003900000002000000000000000000000000000000"
     "000000009f0112000000000007000000010000004000420078000a0000000000000000006100740073007600"
     "6300"},
    {"", "modbus__modbus-eit o #0", true, 502, "000000000005002b0e0100"},
    {"", "modbus__modbus-eit r #0", false, 502, "00000000000c002b0e01004db70000000000"},
    {"", "dnp3__dnp3-write o #0", true, 20000,
     "056412c4020003009c68dfc0023201070183a55c583401f3d2"},
    {"", "socks o #0", true, 8124, "050100"},
    {"", "tls__xmpp-starttls o #0", true, 5222,
     "3c73747265616d3a73747265616d20786d6c6e733a73747265616d3d27687474703a2f2f6574686572782e6a"
     "61626265722e6f72672f73747265616d732720786d6c6e733d276a61626265723a636c69656e742720746f3d"
     "276a61626265722e6363632e6465272076657273696f6e3d27312e30273e"},
    {"", "tls__xmpp-starttls r #0", false, 5222,
     "3c3f786d6c2076657273696f6e3d27312e30273f3e3c73747265616d3a73747265616d20786d6c6e733d276a"
     "61626265723a636c69656e742720786d6c6e733a73747265616d3d27687474703a2f2f6574686572782e6a61"
     "626265722e6f72672f73747265616d73272069643d2733343439353738343838272066726f6d3d276a616262"
     "65722e6363632e6465272076657273696f6e3d27312e302720786d6c3a6c616e673d27656e273e"},
    {"", "app-layer-template o #0", true, 7000, "31323a48656c6c6f20576f726c6421"},
    {"", "tls__https-to-http r #0", false, 80,
     "3c21444f43545950452048544d4c3e0a3c68746d6c206c616e673d22656e223e0a202020203c686561643e0a"
     "20202020202020203c6d65746120636861727365743d227574662d38223e0a20202020202020203c7469746c"
     "653e4572726f7220726573706f6e73653c2f7469746c653e0a202020203c2f686561643e0a202020203c626f"
     "64793e0a20202020202020203c68313e4572726f7220726573706f6e73653c2f68313e0a2020202020202020"
     "3c703e4572726f7220636f64653a203430303c2f703e0a20202020202020203c703e4d6573736167653a2042"
     "616420726571756573742073796e7461782028275c7831365c7830335c7830315c783032"},
    {"", "pgsql__pgsql-upgrade-tls r #0", false, 5432, "53"},
    {"", "pgsql__pgsql-upgrade-tls r #1", false, 5432,
     "450000009653464154414c00433238303030004d6e6f2070675f6862612e636f6e6620656e74727920666f72"
     "207265706c69636174696f6e20636f6e6e656374696f6e2066726f6d20686f737420223139322e3136382e35"
     "302e3131222c20757365722022726570222c2053534c206f66660046617574682e63004c3438310052436c69"
     "656e7441757468656e7469636174696f6e0000"},
    {"", "mysql__encrypted o #0", true, 3306,
     "2000000185ae3f20000000012d0000000000000000000000000000000000000000000000"},
    {"", "redis__django-cloud r #0", false, 10625, "24310d0a360d0a"},
    {"", "ssh__server-pre-banner-data r #0", false, 22,
     "205f5f5f5f5f5f5f5f5f5f5f5f5f0a3c20486920737472616e676572203e0a202d2d2d2d2d2d2d2d2d2d2d2d"
     "2d0a2020205c202020202020202020202020205c0a202020205c202020202020202020202020205c5f0a2020"
     "2020205c202020202020202020202020205c5c0a2020202020205c202020202020202020202020205c5c2f5c"
     "0a202020202020205c2020202020202020202020205f5c5c2f0a20202020202020205c202020202020202020"
     "2f2020202d5c0a2020202020202020205c2020202020202f20206f6f2020202d5c0a20202020202020202020"
     "5c2020202f20202020202020202020205c0a202020202020202020202020207c20202020"},
    {"http2", "curl 7.88 --http2-prior-knowledge", true, 8080,
     "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a0000120400000000000003000000640004020000"
     "0000020000000000000408000000000001ff000100001f010500000001828586418b089d5c0b8170dc0bc078"
     "3f7a8825b650c3abbcf2e153032a2f2a"},
    {"grpc", "curl 7.88 h2c with content-type application/grpc (Huffman)", true, 8080,
     "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a0000120400000000000003000000640004020000"
     "0000020000000000000408000000000001ff00010000510104000000018304956272d141fc1eca245f15852a"
     "4b631b87eb1968a0ff86418b089d5c0b8170dc0bc0781f7a8825b650c3abbcf2e153032a2f2a5f8b1d75d062"
     "0d263d4c4d656440027465864d833505b11f0f0d0130000000000100000001"},
    {"grpc", "spec: h2c preface, SETTINGS, HEADERS with a raw-literal content-type", true, 50051,
     "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a0000120400000000000003000000640004001000"
     "000006000020000000500104000000018386441c2f68656c6c6f776f726c642e477265657465722f53617948"
     "656c6c6f410f6c6f63616c686f73743a35303035315f106170706c69636174696f6e2f677270634002746508"
     "747261696c657273"},
    {"kafka", "spec: Kafka ApiVersions v3 (Java 3.6)", true, 9092,
     "000000310012000300000001000d61646d696e636c69656e742d3100126170616368652d6b61666b612d6a61"
     "766106332e362e3100"},
    {"kafka", "spec: Kafka Metadata v1 (all topics)", true, 9092,
     "000000150003000100000001000772646b61666b61ffffffff"},
    {"kafka", "spec: Kafka ApiVersions v0, null client id", true, 9092,
     "0000000a0012000000000000ffff"},
    {"", "spec: Kafka ApiVersions v0 response", false, 9092,
     "000000200000000100000000000300000000000900000000000900000000000900000000"},
    {"mongodb", "spec: MongoDB OP_MSG hello", true, 27017,
     "340000000700000000000000dd07000000000000001f0000001068656c6c6f00010000000224646200060000"
     "0061646d696e0000"},
    {"mongodb", "spec: MongoDB OP_QUERY isMaster", true, 27017,
     "470000000100000000000000d40700000000000061646d696e2e24636d640000000000ffffffff2000000010"
     "69734d617374657200010000001068656c6c6f4f6b000100000000"},
    {"mongodb", "spec: MongoDB OP_MSG reply", false, 27017,
     "510000001500000007000000dd07000000000000003c0000001069735772697461626c655072696d61727900"
     "01000000106d61785769726556657273696f6e0015000000016f6b00000000000000f03f00"},
    {"memcached", "spec: memcached text set", true, 11211,
     "73657420757365723a34322030203336303020350d0a68656c6c6f0d0a"},
    {"memcached", "spec: memcached text get", true, 11211,
     "67657420757365723a343220757365723a34330d0a"},
    {"memcached", "spec: memcached version", true, 11211, "76657273696f6e0d0a"},
    {"memcached", "spec: memcached meta get", true, 11211, "6d6720757365723a34322076206620740d0a"},
    {"memcached", "spec: memcached binary GET", true, 11211,
     "800000070000000000000007000000010000000000000000757365723a3432"},
    {"", "spec: memcached text reply", false, 11211,
     "56414c554520757365723a3432203020350d0a68656c6c6f0d0a454e440d0a"},
    {"", "spec: memcached binary reply", false, 11211,
     "8100000004000000000000090000000100000000000000000000000068656c6c6f"},
    {"mysql", "spec: MySQL 8.0 HandshakeV10", false, 3306,
     "4a0000000a382e302e3336000b000000616263646566676800ffffff0200ffdf150000000000000000000069"
     "6a6b6c6d6e6f70717273740063616368696e675f736861325f70617373776f726400"},
    {"smtp", "spec: Postfix greeting", false, 25,
     "323230206d78312e6578616d706c652e636f6d2045534d545020506f7374666978202844656269616e2f474e"
     "55290d0a"},
    {"smtp", "spec: client HELO", true, 25, "68656c6f20636c69656e742e6578616d706c652e636f6d0d0a"},
    {"ftp", "spec: ProFTPD greeting", false, 21,
     "3232302050726f4654504420536572766572202844656269616e29205b3a3a666666663a3139322e302e322e"
     "31305d0d0a"},
    {"ftp", "spec: FileZilla greeting", false, 21,
     "3232302d46696c655a696c6c612053657276657220312e372e330d0a32323020506c65617365207669736974"
     "2068747470733a2f2f66696c657a696c6c612d70726f6a6563742e6f72672f0d0a"},
    {"pop3", "spec: Dovecot POP3 greeting", false, 110,
     "2b4f4b20446f7665636f74202844656269616e292072656164792e0d0a"},
    {"imap", "spec: Dovecot IMAP greeting", false, 143,
     "2a204f4b205b4341504142494c49545920494d41503472657631205341534c2d4952204c4f47494e2d524546"
     "455252414c5320494420454e41424c452049444c45204c49544552414c2b205354415254544c532041555448"
     "3d504c41494e5d20446f7665636f74202844656269616e292072656164792e0d0a"},
    {"redis", "spec: Redis HELLO 3", true, 6379, "2a320d0a24350d0a48454c4c4f0d0a24310d0a330d0a"},
    {"", "spec: Redis inline PING", true, 6379, "50494e470d0a"},
    {"", "spec: Redis +OK reply", false, 6379, "2b4f4b0d0a"},
    {"postgresql", "spec: PostgreSQL 18 StartupMessage, protocol 3.2", true, 5432,
     "0000001f000300027573657200617070006461746162617365006170700000"},
    {"postgresql", "spec: PostgreSQL GSSENCRequest", true, 5432, "0000000804d21630"},
    {"postgresql", "spec: PostgreSQL CancelRequest", true, 5432,
     "0000001004d2162e0000109200bc614e"},
    {"http", "spec: GET with a 400-byte target", true, 8080,
     "474554202f6170692f76312f7365617263683f713d7878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787878787878787878787878787878787878787878"
     "7878787878787878787878787878787878787878787878787820485454502f312e310d0a486f73743a20610d"
     "0a0d0a"},
    {"", "spec: HTTP/2 server SETTINGS", false, 8080,
     "000006040000000000000300000064000004080000000000000f0001"},
    {"", "spec: Kafka-like bytes, wrong api key", true, 9092, "000000140001000000000001000178"},
};

std::vector<uint8_t> unhex(const char* h) {
    std::vector<uint8_t> out;
    for (size_t i = 0; h[i] != '\0' && h[i + 1] != '\0'; i += 2)
        out.push_back(uint8_t(std::stoi(std::string(h + i, 2), nullptr, 16)));
    return out;
}

std::string defaults_path() {
    if (const char* env = std::getenv("CLOSETAP_SIGNATURES"); env != nullptr && *env != '\0')
        return env;
    // Standalone builds run from anywhere: find the file next to this source.
    return (std::filesystem::path(__FILE__).parent_path() / ".." / "deploy" / "signatures.yaml")
        .lexically_normal();
}

const AppClassifier& defaults() {
    static const AppClassifier c = AppClassifier::from_file(defaults_path());
    return c;
}

uint16_t id_of(const AppClassifier& c, const std::string& name) {
    if (name.empty()) return app_unknown;
    for (size_t i = 0; i < c.names().size(); i++)
        if (c.names()[i] == name) return uint16_t(i);
    ADD_FAILURE() << "no signature named " << name;
    return app_unknown;
}

uint16_t run(const AppClassifier& c, AppScratch& s, bool orig, uint16_t port,
             const std::vector<uint8_t>& b) {
    return c.classify(s, orig, port, b.data(), uint32_t(b.size()));
}

std::string yaml_quote(const std::string& s) {
    std::string out = "'";
    for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
    return out + "'";
}

// A file with one signature, as the defaults have it.
std::string single_yaml(const AppSignature& s) {
    std::string y =
        "- name: " + s.name + "\n  pattern: " + yaml_quote(s.pattern) + "\n  direction: ";
    y += s.direction == AppDirection::orig   ? "orig"
         : s.direction == AppDirection::resp ? "resp"
                                             : "any";
    y += "\n  flags: [";
    if (s.caseless) y += "caseless";
    if (s.dotall) y += std::string(s.caseless ? ", " : "") + "dotall";
    y += "]\n";
    if (!s.ports.empty()) {
        y += "  ports: [";
        for (size_t i = 0; i < s.ports.size(); i++)
            y += (i ? ", " : "") + std::to_string(s.ports[i]);
        y += "]\n";
    }
    return y;
}

std::string error_of(const std::string& yaml, AppClassifierOptions opt = {}) {
    try {
        AppClassifier::from_yaml_string(yaml, "test.yaml", opt);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

TEST(AppClassifier, DefaultsLoadAndNumberLabels) {
    const AppClassifier& c = defaults();
    ASSERT_GE(c.names().size(), 2u);
    EXPECT_EQ(c.names()[0], "unknown");
    EXPECT_EQ(c.names().size(), c.signatures().size() + 1);
    EXPECT_LE(c.signatures().size(), max_app_signatures);
    for (size_t i = 0; i < c.signatures().size(); i++)
        EXPECT_EQ(c.names()[i + 1], c.signatures()[i].name);
    EXPECT_EQ(c.max_scan_bytes(), 256u);
}

// Every default signature has real bytes that it must label.
TEST(AppClassifier, EveryDefaultSignatureHasSamples) {
    for (const AppSignature& s : defaults().signatures()) {
        size_t n = 0;
        for (const Sample& x : samples) n += s.name == x.label;
        EXPECT_GT(n, 0u) << s.name << " has no sample";
    }
}

// The whole file on every sample, in the direction it was sent and the other way round: a
// signature limited to one side must not label the other side's bytes.
TEST(AppClassifier, DefaultsLabelEverySampleInItsDirectionOnly) {
    const AppClassifier& c = defaults();
    AppScratch s = c.make_scratch();
    for (const Sample& x : samples) {
        const std::vector<uint8_t> b = unhex(x.hex);
        const uint16_t want = id_of(c, x.label);
        EXPECT_EQ(c.names()[run(c, s, x.from_orig, x.server_port, b)], c.names()[want]) << x.source;
        uint16_t flipped = app_unknown;
        if (want != app_unknown && c.signatures()[want - 1].direction == AppDirection::any)
            flipped = want;
        EXPECT_EQ(c.names()[run(c, s, !x.from_orig, x.server_port, b)], c.names()[flipped])
            << x.source << " (other direction)";
    }
    EXPECT_EQ(s.scan_errors(), 0u);
}

// Each signature alone against every sample, so that an overlap hidden by priority or file
// order still shows. The only overlap allowed: a gRPC connection also starts with the HTTP/2
// preface (grpc wins on priority).
TEST(AppClassifier, ConfusionMatrixEverySampleAgainstEverySignature) {
    const AppClassifier& all = defaults();
    for (const AppSignature& sig : all.signatures()) {
        const AppClassifier one = AppClassifier::from_yaml_string(single_yaml(sig), sig.name);
        AppScratch s = one.make_scratch();
        for (const Sample& x : samples) {
            const std::vector<uint8_t> b = unhex(x.hex);
            const bool expect =
                sig.name == x.label || (sig.name == "http2" && std::string(x.label) == "grpc");
            for (int orig = 0; orig < 2; orig++) {
                const bool fits = sig.direction == AppDirection::any ||
                                  (sig.direction == AppDirection::orig) == bool(orig);
                const bool want = expect && fits && bool(orig) == x.from_orig;
                const bool got = run(one, s, bool(orig), x.server_port, b) != app_unknown;
                // The other direction of a label's own sample may match an `any` signature.
                if (expect && fits && sig.direction == AppDirection::any) continue;
                EXPECT_EQ(got, want)
                    << sig.name << " on " << x.source << (orig ? " as orig" : " as resp");
            }
        }
    }
}

TEST(AppClassifier, RandomBytesMatchNothing) {
    const AppClassifier& c = defaults();
    AppScratch s = c.make_scratch();
    std::mt19937 rng(20240611);  // fixed: the same bytes on every run and platform
    std::vector<uint8_t> b(256);
    const uint16_t ports[] = {53, 80, 443, 5432, 9092, 11211};
    unsigned labelled = 0;
    for (int i = 0; i < 20000; i++) {
        for (uint8_t& v : b) v = uint8_t(rng());
        for (uint16_t p : ports) {
            labelled += run(c, s, true, p, b) != app_unknown;
            labelled += run(c, s, false, p, b) != app_unknown;
        }
    }
    EXPECT_EQ(labelled, 0u);
}

TEST(AppClassifier, PortsLimitASignatureToItsServerPort) {
    const AppClassifier& c = defaults();
    AppScratch s = c.make_scratch();
    for (const Sample& x : samples) {
        if (std::string(x.label) != "dns") continue;
        const std::vector<uint8_t> b = unhex(x.hex);
        EXPECT_EQ(run(c, s, x.from_orig, 53, b), id_of(c, "dns")) << x.source;
        EXPECT_EQ(run(c, s, x.from_orig, 5353, b), app_unknown) << x.source;
        EXPECT_EQ(run(c, s, x.from_orig, 0, b), app_unknown) << x.source;
    }
}

TEST(AppClassifier, LowestPriorityThenFileOrderWins) {
    const std::vector<uint8_t> b = {'a', 'b', 'c', 'd', 'e', 'f'};
    {
        auto c = AppClassifier::from_yaml_string(
            "- {name: late, pattern: 'ef', priority: 100}\n"
            "- {name: early, pattern: '^ab', priority: 100}\n"
            "- {name: best, pattern: 'cd', priority: -5}\n");
        AppScratch s = c.make_scratch();
        EXPECT_EQ(c.names()[run(c, s, true, 1, b)], "best");
    }
    {
        auto c = AppClassifier::from_yaml_string(
            "- {name: first, pattern: 'ef'}\n"
            "- {name: second, pattern: '^ab'}\n");
        AppScratch s = c.make_scratch();
        EXPECT_EQ(c.names()[run(c, s, true, 1, b)], "first");  // tie: file order, not offset
    }
}

TEST(AppClassifier, DirectionsAndFlags) {
    auto c = AppClassifier::from_yaml_string(
        "- {name: client, pattern: '^hello', direction: orig}\n"
        "- {name: server, pattern: '^welcome', direction: resp, flags: [caseless]}\n"
        "- {name: either, pattern: '^a.b', direction: any, flags: [dotall]}\n");
    AppScratch s = c.make_scratch();
    auto v = [](std::string t) { return std::vector<uint8_t>(t.begin(), t.end()); };
    EXPECT_EQ(run(c, s, true, 1, v("hello")), 1);
    EXPECT_EQ(run(c, s, false, 1, v("hello")), 0);
    EXPECT_EQ(run(c, s, false, 1, v("WELCOME")), 2);
    EXPECT_EQ(run(c, s, true, 1, v("welcome")), 0);
    EXPECT_EQ(run(c, s, true, 1, v("a\nb")), 3);
    EXPECT_EQ(run(c, s, false, 1, v("a\nb")), 3);
    EXPECT_EQ(run(c, s, true, 1, v("")), 0);
    EXPECT_EQ(c.classify(s, true, 1, nullptr, 5), 0);
}

// Only the first max_scan_bytes bytes are looked at.
TEST(AppClassifier, ScanCapIsHonoured) {
    const std::string yaml = "- {name: magic, pattern: 'MAGIC'}\n";
    auto at = [](size_t off) {
        std::vector<uint8_t> b(600, 'x');
        std::copy_n("MAGIC", 5, b.begin() + long(off));
        return b;
    };
    auto c = AppClassifier::from_yaml_string(yaml);
    AppScratch s = c.make_scratch();
    EXPECT_EQ(run(c, s, true, 1, at(100)), 1);
    EXPECT_EQ(run(c, s, true, 1, at(251)), 1);  // ends at byte 256: inside
    EXPECT_EQ(run(c, s, true, 1, at(252)), 0);  // ends at byte 257: outside
    EXPECT_EQ(run(c, s, true, 1, at(300)), 0);
    auto wide = AppClassifier::from_yaml_string(yaml, "t", {.max_scan_bytes = 512});
    AppScratch ws = wide.make_scratch();
    EXPECT_EQ(run(wide, ws, true, 1, at(300)), 1);
    auto file = AppClassifier::from_yaml_string(
        "max_scan_bytes: 64\nsignatures:\n  - {name: magic, pattern: 'MAGIC'}\n");
    AppScratch fs = file.make_scratch();
    EXPECT_EQ(file.max_scan_bytes(), 64u);
    EXPECT_EQ(run(file, fs, true, 1, at(59)), 1);
    EXPECT_EQ(run(file, fs, true, 1, at(60)), 0);
    // Anchored patterns see the truncated buffer: `$` is the end of the scanned bytes.
    auto end = AppClassifier::from_yaml_string("- {name: tail, pattern: '^x+$'}\n");
    AppScratch es = end.make_scratch();
    EXPECT_EQ(run(end, es, true, 1, std::vector<uint8_t>(1000, 'x')), 1);
}

TEST(AppClassifier, ScratchesAreIndependentAndMovable) {
    const AppClassifier& c = defaults();
    AppScratch a = c.make_scratch();
    AppScratch b = c.make_scratch();
    const std::vector<uint8_t> get = unhex(samples[0].hex);
    EXPECT_EQ(run(c, a, true, 80, get), id_of(c, "http"));
    EXPECT_EQ(run(c, b, true, 80, get), id_of(c, "http"));
    AppScratch moved = std::move(a);
    EXPECT_EQ(run(c, moved, true, 80, get), id_of(c, "http"));
    EXPECT_EQ(moved.scans(), 2u);
    EXPECT_EQ(run(c, a, true, 80, get), app_unknown);  // a moved-from scratch scans nothing
    AppClassifier c2 = AppClassifier::from_file(defaults_path());
    AppClassifier c3 = std::move(c2);
    AppScratch s3 = c3.make_scratch();
    EXPECT_EQ(run(c3, s3, true, 80, get), id_of(c3, "http"));
}

// Bad files: one line naming the file, the signature and the problem.
TEST(AppClassifier, BadPatternNamesSignatureAndHyperscanMessage) {
    const std::string e = error_of(
        "- {name: good, pattern: '^ok'}\n"
        "- {name: broken_one, pattern: '^(abc', direction: resp}\n");
    EXPECT_NE(e.find("test.yaml:2"), std::string::npos) << e;
    EXPECT_NE(e.find("signature 1 'broken_one'"), std::string::npos) << e;
    EXPECT_NE(e.find("Hyperscan: Missing close parenthesis"), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    // A pattern that matches the empty buffer is a Hyperscan error too.
    const std::string empty = error_of("- {name: empty, pattern: 'a*'}\n");
    EXPECT_NE(empty.find("signature 0 'empty'"), std::string::npos) << empty;
    EXPECT_NE(empty.find("Hyperscan"), std::string::npos) << empty;
}

TEST(AppClassifier, BadFilesAreRejectedWithOneLine) {
    struct Case {
        const char* yaml;
        const char* want;
    };
    const Case cases[] = {
        {"- {name: a, pattern: 'x', colour: red}\n", "signature 0 'a': unknown key 'colour'"},
        {"- {pattern: 'x'}\n", "signature 0: missing name"},
        {"- {name: a}\n", "signature 0 'a': missing pattern"},
        {"- {name: a, pattern: 'x', direction: up}\n", "direction must be orig, resp or any"},
        {"- {name: a, pattern: 'x'}\n- {name: a, pattern: 'y'}\n",
         "signature 1 'a': duplicate name"},
        {"- {name: NotSnake, pattern: 'x'}\n", "name must be snake_case"},
        {"- {name: 'a-b', pattern: 'x'}\n", "name must be snake_case"},
        {"- {name: unknown, pattern: 'x'}\n", "reserved"},
        {"- {name: a, pattern: 'x', flags: [fast]}\n", "unknown flag 'fast'"},
        {"- {name: a, pattern: 'x', priority: high}\n", "priority must be an integer"},
        {"- {name: a, pattern: 'x', ports: [0]}\n", "port 0 is not 1-65535"},
        {"- {name: a, pattern: 'x', ports: 53}\n", "ports must be a list"},
        {"- name: a\n  pattern: [x\n", "test.yaml:"},
        {"[]\n", "the signature list is empty"},
        {"name: a\n", "unknown top-level key 'name'"},
        {"max_scan_bytes: 0\nsignatures: [{name: a, pattern: 'x'}]\n",
         "max_scan_bytes must be 1-65535"},
        {"- just a string\n", "signature 0: a signature is a map"},
    };
    for (const Case& k : cases) {
        const std::string e = error_of(k.yaml);
        EXPECT_NE(e.find(k.want), std::string::npos) << k.yaml << " -> " << e;
        EXPECT_EQ(e.rfind("test.yaml", 0), 0u) << e;
        EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    }
}

TEST(AppClassifier, AtMostThirtySignatures) {
    std::string y;
    for (unsigned i = 0; i < max_app_signatures; i++)
        y += "- {name: s" + std::to_string(i) + ", pattern: '^p" + std::to_string(i) + "x'}\n";
    auto c = AppClassifier::from_yaml_string(y);
    EXPECT_EQ(c.names().size(), 31u);
    AppScratch s = c.make_scratch();
    const std::string last = "p29x";
    EXPECT_EQ(c.classify(s, true, 1, reinterpret_cast<const uint8_t*>(last.data()), 4), 30);
    y += "- {name: one_too_many, pattern: 'x'}\n";
    const std::string e = error_of(y);
    EXPECT_NE(e.find("31 signatures, at most 30"), std::string::npos) << e;
}

TEST(AppClassifier, FileErrorsNameTheFile) {
    try {
        AppClassifier::from_file("/nonexistent/signatures.yaml");
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "/nonexistent/signatures.yaml: cannot open the signature file");
    }
    const std::string path = testing::TempDir() + "bad_signatures.yaml";
    std::ofstream(path) << "- {name: a, pattern: '(('}\n";
    try {
        AppClassifier::from_file(path);
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(
            std::string(e.what()).rfind(path + ":1: signature 0 'a': pattern does not compile", 0),
            0u)
            << e.what();
    }
    std::filesystem::remove(path);
}

TEST(AppClassifier, SearchPathOrder) {
    const char* old = std::getenv("CLOSETAP_SIGNATURES");
    const std::string saved = old != nullptr ? old : "";
    unsetenv("CLOSETAP_SIGNATURES");
    std::vector<std::string> p = signature_search_paths("/opt/closetap/bin/closetap");
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0], "/opt/closetap/deploy/signatures.yaml");
    EXPECT_EQ(p[1], "/etc/closetap/signatures.yaml");
    setenv("CLOSETAP_SIGNATURES", "/tmp/mine.yaml", 1);
    p = signature_search_paths("/opt/closetap/bin/closetap");
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0], "/tmp/mine.yaml");
    setenv("CLOSETAP_SIGNATURES", "/nonexistent/mine.yaml", 1);
    try {
        find_signature_file();
        FAIL();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/mine.yaml"), std::string::npos);
    }
    if (old != nullptr)
        setenv("CLOSETAP_SIGNATURES", saved.c_str(), 1);
    else
        unsetenv("CLOSETAP_SIGNATURES");
}

}  // namespace
}  // namespace closetap
