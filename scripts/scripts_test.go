// Package scripts holds the project's shell scripts; its tests check the
// helpers they share (scripts/apt.sh) with bash.
package scripts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
// The synthetic sources name local file: mirrors, which apt takes like any
// other, so no network address is written here; TestNonfreeSourcesOnThisMachine
// reads the machine's real sources.
func TestNonfreeSourcesUseTheMachinesMirror(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	deb822 := filepath.Join(dir, "debian.sources")
	os.WriteFile(deb822, []byte(`Types: deb
URIs: file:/srv/apt/debian-security
Suites: bookworm-security
Components: main

# the main archive
Types: deb deb-src
URIs: file:/srv/apt/debian/ file:/srv/apt/second
Suites: bookworm bookworm-updates
Components: main
Signed-By: /etc/keys/mirror.gpg
`), 0o644)
	list := filepath.Join(dir, "sources.list")
	os.WriteFile(list, []byte(`# deb file:/srv/apt/commented bookworm main
deb file:/srv/apt/debian-security bookworm-security main
deb [arch=amd64 signed-by=/etc/keys/list.gpg] file:/srv/apt/local trixie main
`), 0o644)
	none := filepath.Join(dir, "missing")
	for _, c := range []struct {
		call, mirror, keyring string
	}{
		{"nonfree_sources bookworm " + deb822 + " " + list, "file:/srv/apt/debian/", "/etc/keys/mirror.gpg"},
		{"nonfree_sources trixie " + deb822 + " " + list, "file:/srv/apt/local", "/etc/keys/list.gpg"},
		{"nonfree_sources trixie " + none + " " + list, "file:/srv/apt/local", "/etc/keys/list.gpg"},
	} {
		out, err := sourced(t, c.call)
		if err != nil || !strings.Contains(out, "URIs: "+c.mirror+"\n") || !strings.Contains(out, "Signed-By: "+c.keyring+"\n") ||
			!strings.Contains(out, "Components: contrib non-free non-free-firmware") || strings.Count(out, "URIs: ") != 1 {
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

// TestNonfreeSourcesOnThisMachine runs nonfree_sources on the machine's own
// apt sources, as install-cuda-toolkit.sh does: on a Debian machine the URI
// it writes is one that those sources name; elsewhere it fails, saying so.
func TestNonfreeSourcesOnThisMachine(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	out, err := sourced(t, `. /etc/os-release 2>/dev/null; nonfree_sources "${VERSION_CODENAME:-none}" 2>&1`)
	var own strings.Builder
	for _, f := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		b, _ := os.ReadFile(f)
		own.Write(b)
	}
	uri, found := "", false
	for _, line := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(line, "URIs: "); ok {
			uri, found = u, true
		}
	}
	switch {
	case err == nil && found:
		if !strings.Contains(own.String(), " "+uri) {
			t.Errorf("wrote URIs %q, which the machine's apt sources do not name:\n%s", uri, own.String())
		}
	case err != nil && strings.Contains(out, "no Debian archive for"):
		// not a Debian machine: the failure names what is missing
	default:
		t.Errorf("nonfree_sources on this machine: %v\n%s", err, out)
	}
}

// TestSlurmLocalClearsAFolderLeftByADeadCluster: a cluster that died (a
// machine restart, a killed session) leaves its folder with pid files that
// name dead processes, or pids since taken by unrelated ones. `start` clears
// such a folder through `stop`, which must then succeed, kill what the
// cluster left (its jobs carry its SLURM_CONF and a SLURM_JOB_ID), spare
// everything else (a stranger, a user's process that merely carries the
// SLURM_CONF its shell exported), and remove the folder.
func TestSlurmLocalClearsAFolderLeftByADeadCluster(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc")
	}
	dir := filepath.Join(t.TempDir(), "cluster")
	conf := filepath.Join(dir, "slurm.conf")
	if err := os.MkdirAll(filepath.Join(dir, "munge"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(conf, nil, 0o644)

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	start := func(env ...string) *exec.Cmd {
		c := exec.Command("sleep", "60")
		c.Env = append(os.Environ(), env...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	stranger := start()                                     // a pid a stale file may name
	bystander := start("SLURM_CONF=" + conf)                // started from a shell that exported it
	leftover := start("SLURM_CONF="+conf, "SLURM_JOB_ID=7") // a job the cluster left
	pid := func(c *exec.Cmd) string { return strconv.Itoa(c.Process.Pid) }
	os.WriteFile(filepath.Join(dir, "slurmd.pid"), []byte(pid(dead)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "slurmctld.pid"), []byte(pid(stranger)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "munge", "munged.pid"), []byte("garbage\n"), 0o644)

	cmd := exec.Command("bash", "slurm-local.sh", "stop")
	cmd.Env = append(os.Environ(), "SLURM_LOCAL_DIR="+dir, "SLURM_CONF=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "slurm-local: stopped") {
		t.Fatalf("stop on a stale folder: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the folder is still there: %v", err)
	}
	if err := leftover.Wait(); err == nil {
		t.Error("the process carrying the cluster's SLURM_CONF was not stopped")
	}
	if !running(stranger) {
		t.Error("stop killed a process that is not the cluster's (named by a stale pid file)")
	}
	if !running(bystander) {
		t.Error("stop killed a process that only carries the cluster's SLURM_CONF (a user's, not a job)")
	}
}

// running reports whether a child still runs: a child killed but not yet
// waited for is a zombie, which signal 0 would still find.
func running(c *exec.Cmd) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(string(stat), ") ")
	return ok && !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}
