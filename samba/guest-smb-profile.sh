#!/usr/bin/env bash
# Runs inside the VM: where smbd's system time goes on an SMB2 WRITE, stock
# next to the netfile module. perf (the host's binary: the guest's root is
# the host's) samples the whole guest on cpu-clock while smbclient puts a
# file of 8 MiB WRITEs to each share over loopback. The samples and the
# guest's kallsyms go to $VM_OUT; scripts/profile.sh --samba runs this and
# reports smbd's kernel symbols on the host.
#
#   samba/guest-smb-profile.sh [MiB]
set -uo pipefail

TOP=${TOP:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=samba/guest-smb.sh
. "$TOP/samba/guest-smb.sh"

MIB=${1:-256}
out=${VM_OUT:?}

dmesg -n 1
setup_dirs && write_conf && setup_veth && start_smbd || exit 1
make_file "$D/data/prof.src" $((MIB << 20)) prof
for share in stock share; do
	# once unprofiled, so that both shares overwrite a file that exists
	(cd "$D/data" && smb - "$share" -c 'put prof.src prof') > /dev/null
	perf record -N -B -a -e cpu-clock -F 999 -o /tmp/perf.data -- \
		sh -c "cd $D/data && smbclient //127.0.0.1/$share -p $PORT -U root%$PW \
			-s $D/client.conf -m SMB3 -c 'put prof.src prof' > /dev/null 2>&1"
	# reported on the host against the guest's kallsyms (scripts/profile.sh)
	mv /tmp/perf.data "$out/smb-profile-$share.data"
done
cat /proc/kallsyms > "$out/kallsyms"
kill "$SMBD_PID"
wait "$SMBD_PID" 2> /dev/null
exit 0
