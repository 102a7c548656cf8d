package main

import (
	"os"
	"strings"
	"testing"
)

func TestDataList(t *testing.T) {
	code, stdout, stderr := sincere("data", "list", "--root", t.TempDir())
	if code != 0 {
		t.Fatal(stderr)
	}
	for _, name := range []string{"mnist", "fashion-mnist", "cifar10", "cifar100", "synthetic"} {
		if !strings.Contains(stdout, "\n"+name+" ") {
			t.Errorf("data list lacks %s:\n%s", name, stdout)
		}
	}
	if !strings.Contains(stdout, "missing: `sincere data fetch cifar10`") {
		t.Errorf("no fetch hint for a missing set:\n%s", stdout)
	}
}

func TestDataVerifyAndErrors(t *testing.T) {
	root := t.TempDir()
	if code, _, stderr := sincere("data", "fetch", "imagenet", "--root", root); code == 0 || !strings.Contains(stderr, "unknown data set") {
		t.Errorf("fetch imagenet: %d %q", code, stderr)
	}
	if code, _, stderr := sincere("data", "verify", "cifar100", "--root", root); code == 0 || !strings.Contains(stderr, "verification failed") {
		t.Errorf("verify of a missing set: %d %q", code, stderr)
	}
	if code, _, stderr := sincere("data", "fetch", "cifar10", "--root", root, "--file", root+"/nope.tar.gz"); code == 0 || strings.Count(stderr, "\n") != 1 {
		t.Errorf("fetch from a missing file: %d %q", code, stderr)
	}
	if entries, _ := os.ReadDir(root + "/cifar10"); len(entries) != 0 {
		t.Errorf("failed fetch left %d files", len(entries))
	}
	code, stdout, stderr := sincere("data", "verify", "mnist", "--root", root)
	switch {
	case code == 0:
		if !strings.Contains(stdout, "mnist: verified, 60000 train and 10000 test images") {
			t.Errorf("verify mnist: %q", stdout)
		}
	case os.Getenv("SINCERE_REQUIRE_DATA") != "":
		t.Errorf("verify mnist: %d %q %q", code, stdout, stderr)
	default:
		t.Logf("MNIST not installed here: %s", stderr)
	}
}

func TestBenchDataSmall(t *testing.T) {
	code, stdout, stderr := sincere("bench", "data", "--batch", "20", "--batches", "2", "--warmup", "1", "--workers", "1", "--root", t.TempDir(), "-q")
	if code != 0 {
		t.Fatal(stderr)
	}
	if strings.Count(stdout, "\n") != 3 || !strings.Contains(stdout, "digits") || !strings.Contains(stdout, "cifar") {
		t.Errorf("bench data table:\n%s", stdout)
	}
}
