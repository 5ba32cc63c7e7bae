#!/usr/bin/python3
"""One side of the READ-versus-overwrite race, through Samba's own client
library (python3-samba), so that every READ and every WRITE is exactly one
SMB2 request of the whole file and the file is overwritten in place (an
smbclient 'put' truncates first, which hides the race).

  smb_race.py write HOST CONF SHARE FILE A B ROUNDS   overwrite: B, A, ...
  smb_race.py read  HOST CONF SHARE FILE A B ROUNDS   read; each A or B

A and B are local files of the same size. The reader prints one line per
READ ("old", "new", or "MIXED at OFFSET") and exits 1 if any was mixed.
"""
import sys

from samba import credentials
from samba.samba3 import libsmb_samba_internal as libsmb
from samba.samba3 import param as s3param

FILE_OPEN = 1
GENERIC_READ_WRITE = 0x80000000 | 0x40000000
SHARE_ALL = 7


def connect(host, conf, share):
    lp = s3param.get_context()
    lp.load(conf)
    creds = credentials.Credentials()
    creds.guess(lp)
    creds.set_username("root")
    creds.set_password("netfile")
    return libsmb.Conn(host, share, lp, creds)


def first_difference(x, y):
    for i in range(0, len(x), 4096):
        if x[i:i + 4096] != y[i:i + 4096]:
            return i
    return -1


def main():
    role, host, conf, share, name, a_path, b_path, rounds = sys.argv[1:9]
    a = open(a_path, "rb").read()
    b = open(b_path, "rb").read()
    conn = connect(host, conf, share)
    fnum = conn.create(name, DesiredAccess=GENERIC_READ_WRITE,
                       ShareAccess=SHARE_ALL, CreateDisposition=FILE_OPEN)
    mixed = 0
    for i in range(int(rounds)):
        if role == "write":
            for data in (b, a):
                written = conn.write(fnum, data, 0)
                if written != len(data):
                    print(f"short write {written}")
                    return 2
            continue
        got = conn.read(fnum, 0, len(a))
        if got == a:
            print(f"READ {i}: old")
        elif got == b:
            print(f"READ {i}: new")
        else:
            mixed += 1
            print(f"READ {i}: MIXED (length {len(got)}, differs from old at "
                  f"{first_difference(got, a)}, from new at "
                  f"{first_difference(got, b)})")
    conn.close(fnum)
    return 1 if mixed else 0


if __name__ == "__main__":
    sys.exit(main())
