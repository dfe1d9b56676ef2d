#!/usr/bin/env python3
"""Kernel TCP peers for the fault tests, run inside a network namespace (stdlib only).

  peer.py server ADDR PORT            accept forever; read until the peer closes, then close
  peer.py client ADDR PORT CLOSED OPEN RST HOLD_S
                                      CLOSED connections that send a request and close (FIN),
                                      RST connections closed with SO_LINGER 0 (a reset), OPEN
                                      connections left open for HOLD_S seconds (or until killed)
Prints "ready" on stdout once the connections are made (client) or it listens (server).
"""
import socket
import struct
import sys
import threading
import time


def server(addr, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1024)
    print("ready", flush=True)

    def serve(c):
        try:
            while c.recv(65536):
                c.sendall(b"ok\n")
        except OSError:
            pass
        c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def client(addr, port, closed, open_, rst, hold):
    for _ in range(closed):
        c = socket.create_connection((addr, port), timeout=5)
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        c.recv(100)
        c.shutdown(socket.SHUT_WR)
        c.recv(100)  # the server's FIN
        c.close()
    for _ in range(rst):
        c = socket.create_connection((addr, port), timeout=5)
        c.sendall(b"x")
        c.recv(100)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    keep = []
    for _ in range(open_):
        c = socket.create_connection((addr, port), timeout=5)
        c.sendall(b"hello")
        c.recv(100)
        keep.append(c)
    print("ready", flush=True)
    time.sleep(hold)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:7]), float(sys.argv[7]))
