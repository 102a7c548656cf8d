// Package scripts holds the project's shell scripts; its tests check the
// helpers they share (scripts/apt.sh) with bash.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sourced runs a function of apt.sh in bash and returns its stdout.
func sourced(t *testing.T, call string) (string, error) {
	t.Helper()
	out, err := exec.Command("bash", "-c", ". ./apt.sh; "+call).Output()
	return string(out), err
}

// TestNonfreeSourcesUseTheMachinesMirror: the apt source the CUDA install
// adds names the mirror (and keyring) of the machine's own Debian entry,
// deb822 or one-line, skipping the security archive, never a fixed one.
func TestNonfreeSourcesUseTheMachinesMirror(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte(`Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

# the main archive
Types: deb deb-src
URIs: http://mirror.example.org/debian/ http://second.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /etc/keys/mirror.gpg
`), 0o644)
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte(`# deb http://commented.example.org/debian bookworm main
deb http://security.debian.org/debian-security bookworm-security main
deb [arch=amd64 signed-by=/etc/keys/list.gpg] http://ftp.example.de/debian trixie main
`), 0o644)
	none := filepath.Join(dir, "missing")
	for _, c := range []struct {
		call, mirror, keyring string
	}{
		{"nonfree_sources bookworm " + deb822 + " " + list, "http://mirror.example.org/debian/", "/etc/keys/mirror.gpg"},
		{"nonfree_sources trixie " + deb822 + " " + list, "http://ftp.example.de/debian", "/etc/keys/list.gpg"},
		{"nonfree_sources trixie " + none + " " + list, "http://ftp.example.de/debian", "/etc/keys/list.gpg"},
	} {
		out, err := sourced(t, c.call)
		if err != nil || !strings.Contains(out, "URIs: "+c.mirror+"\n") || !strings.Contains(out, "Signed-By: "+c.keyring+"\n") ||
			!strings.Contains(out, "Components: contrib non-free non-free-firmware") || strings.Contains(out, "deb.debian.org") {
			t.Errorf("%s: %v\n%s", c.call, err, out)
		}
	}
	if out, err := sourced(t, "nonfree_sources bullseye "+deb822+" "+list); err == nil || out != "" {
		t.Errorf("no entry for the release: %q %v", out, err)
	}
	script, err := os.ReadFile("install-cuda-toolkit.sh")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(script), "URIs: http") || !strings.Contains(string(script), "nonfree_sources") {
		t.Error("install-cuda-toolkit.sh writes a fixed mirror instead of the machine's")
	}
}
