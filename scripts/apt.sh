# Shared by the install scripts (sourced, not run): apt-get as root, or
# through sudo when there is one. Usage: `. scripts/apt.sh; apt_root WHO WHAT`
# sets $sudo, or exits with a message naming WHO (the script) and WHAT (the
# packages) when neither is possible.
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
