# Shared by the install scripts (sourced, not run): apt-get as root, or
# through sudo when there is one. Usage: `. scripts/apt.sh; apt_root WHO WHAT`
# sets $sudo, or exits with a message naming WHO (the script) and WHAT (the
# packages) when neither is possible. debian_mirror and nonfree_sources
# (below) find the machine's own Debian mirror. scripts/scripts_test.go
# tests them.
apt_root() {
	sudo=""
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null; then
			sudo="sudo"
		else
			echo "$1: need root (or sudo) to apt-get install $2" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
}

# debian_mirror CODENAME [DEB822_FILE [LIST_FILE]]: prints the URI and the
# keyring of the machine's own Debian archive entry for CODENAME (a
# "URIs:" stanza of DEB822_FILE, default
# /etc/apt/sources.list.d/debian.sources, whose Suites hold CODENAME, else a
# "deb URI CODENAME ..." line of LIST_FILE, default /etc/apt/sources.list;
# security archives are skipped), as "URI KEYRING" (KEYRING may be empty).
# Prints nothing when neither names one.
debian_mirror() {
	local codename="$1" deb822="${2:-/etc/apt/sources.list.d/debian.sources}" list="${3:-/etc/apt/sources.list}" found=""
	if [ -r "$deb822" ]; then
		found=$(awk -v want="$codename" '
			function flush() {
				if (types ~ /(^| )deb( |$)/ && uri != "" && uri !~ /security/ && (" " suites " ") ~ (" " want " ")) {
					print uri, keyring; found = 1; exit
				}
				types = ""; uri = ""; suites = ""; keyring = ""
			}
			/^[ \t]*#/ { next }
			/^[ \t]*$/ { flush(); next }
			{
				key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^[ \t]+/, "")
				if (key == "types") types = $0
				else if (key == "uris") { split($0, u, /[ \t]+/); uri = u[1] }
				else if (key == "suites") suites = $0
				else if (key == "signed-by" && $0 ~ /^\//) keyring = $0
			}
			END { if (!found) flush() }' "$deb822")
		if [ -n "$found" ]; then
			echo "$found"
			return 0
		fi
	fi
	if [ -r "$list" ]; then
		awk -v want="$codename" '
			$1 == "deb" {
				i = 2
				opts = ""
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) { opts = opts " " $i; i++ }; opts = opts " " $i; i++ }
				if ($(i+1) == want && $i !~ /security/) {
					keyring = ""
					if (match(opts, /signed-by=[^ \]]+/)) keyring = substr(opts, RSTART + 10, RLENGTH - 10)
					print $i, keyring; exit
				}
			}' "$list"
	fi
}

# nonfree_sources CODENAME [DEB822_FILE [LIST_FILE]]: prints a deb822 stanza
# that adds Debian's contrib and non-free components for CODENAME on the
# machine's own mirror (see debian_mirror), or fails with a message when
# the machine names no Debian archive.
nonfree_sources() {
	local mirror="" keyring=""
	read -r mirror keyring < <(debian_mirror "$@") || true
	if [ -z "$mirror" ]; then
		echo "no Debian archive for $1 in ${2:-/etc/apt/sources.list.d/debian.sources} or ${3:-/etc/apt/sources.list}; add contrib and non-free to your Debian source yourself" >&2
		return 1
	fi
	cat <<SOURCES
Types: deb
URIs: ${mirror}
Suites: $1 $1-updates
Components: contrib non-free non-free-firmware
Signed-By: ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
SOURCES
}
