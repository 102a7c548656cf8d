package runlock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeHolder writes a lock file by hand, as another process would have.
func writeHolder(t *testing.T, dir string, h Holder, age time.Duration) {
	t.Helper()
	b, _ := json.Marshal(h)
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command(os.Args[0], "-test.run=^$")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

func TestAcquireHeldRelease(t *testing.T) {
	dir := t.TempDir()
	ctx, l, err := Acquire(context.Background(), dir, Options{Command: "sincere pretrain"})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	h, err := Inspect(dir)
	if err != nil || h == nil || h.PID != os.Getpid() || h.Host != host || h.Command != "sincere pretrain" || h.Token != l.Holder().Token {
		t.Fatalf("lock file holds %+v (%v)", h, err)
	}
	_, _, err = Acquire(context.Background(), dir, Options{})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.Token != l.Holder().Token || held.Remote {
		t.Fatalf("second acquire: %v", err)
	}
	for _, want := range []string{dir + " is in use by", "pid " + itoa(os.Getpid()), "host " + host, "sincere pretrain", "--wait-lock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second release: %v", err)
	}
	if ctx.Err() == nil || errors.Is(context.Cause(ctx), ErrLost) {
		t.Errorf("context after release: %v", context.Cause(ctx))
	}
	if h, _ := Inspect(dir); h != nil {
		t.Errorf("release left %+v", h)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %d files behind", len(entries))
	}
	_, l2, err := Acquire(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2.Release()
	if _, _, err := Acquire(context.Background(), filepath.Join(dir, "missing"), Options{}); err == nil {
		t.Error("locked a directory that does not exist")
	}
}

// TestStale: which locks are taken over and which are not.
func TestStale(t *testing.T) {
	me, err := self("")
	if err != nil {
		t.Fatal(err)
	}
	dead := deadPID(t)
	other := func(mod func(*Holder)) Holder {
		h := me
		h.Token = "someone-else"
		mod(&h)
		return h
	}
	type staleCase struct {
		name  string
		h     Holder
		raw   string // lock file content instead of h
		age   time.Duration
		taken bool
	}
	cases := []staleCase{
		{"live process here", other(func(h *Holder) {}), "", 0, false},
		{"dead process here", other(func(h *Holder) { h.PID = dead; h.StartTicks = 0 }), "", 0, true},
		{"dead process here, old heartbeat", other(func(h *Holder) { h.PID = dead }), "", time.Hour, true},
		{"another host, fresh heartbeat", other(func(h *Holder) { h.Host = "node-b"; h.PID = dead }), "", 0, false},
		{"another host, heartbeat 10 min old", other(func(h *Holder) { h.Host = "node-b" }), "", 10 * time.Minute, true},
		{"unreadable, fresh", Holder{}, "{not json", 0, false},
		{"unreadable, 10 min old", Holder{}, "", 10 * time.Minute, true},
	}
	if runtime.GOOS == "linux" {
		cases = append(cases,
			staleCase{"reused pid here (another start time)", other(func(h *Holder) { h.StartTicks++ }), "", 0, true},
			staleCase{"live pid of an earlier boot", other(func(h *Holder) { h.BootID = "earlier-boot" }), "", 0, true})
	}
	for _, c := range cases {
		dir := t.TempDir()
		if c.h.Token != "" {
			writeHolder(t, dir, c.h, c.age)
		} else {
			p := filepath.Join(dir, FileName)
			os.WriteFile(p, []byte(c.raw), 0o644)
			old := time.Now().Add(-c.age)
			os.Chtimes(p, old, old)
		}
		_, l, err := Acquire(context.Background(), dir, Options{})
		if c.taken {
			if err != nil {
				t.Errorf("%s: not taken over: %v", c.name, err)
				continue
			}
			if h, _ := Inspect(dir); h == nil || h.Token != l.Holder().Token {
				t.Errorf("%s: the lock file holds %+v", c.name, h)
			}
			l.Release()
		} else {
			var held *HeldError
			if !errors.As(err, &held) {
				t.Errorf("%s: want a HeldError, got %v", c.name, err)
				continue
			}
			if c.h.Host == "node-b" && (!held.Remote || !strings.Contains(err.Error(), "heartbeat") || !strings.Contains(err.Error(), "host node-b")) {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, FileName+".break")); err == nil {
			t.Errorf("%s: lock.break left behind", c.name)
		}
	}
}

func TestWait(t *testing.T) {
	dir := t.TempDir()
	_, l, err := Acquire(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		l.Release()
	}()
	var told atomic.Int32
	start := time.Now()
	_, l2, err := Acquire(context.Background(), dir, Options{Wait: true, Poll: 10 * time.Millisecond,
		OnWait: func(h *HeldError) { told.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond || told.Load() != 1 {
		t.Errorf("waited %v, told %d times", time.Since(start), told.Load())
	}
	// A wait ends with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := Acquire(ctx, dir, Options{Wait: true, Poll: 10 * time.Millisecond}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the deadline: %v", err)
	}
	l2.Release()
}

// TestOneHolderAtATime: goroutines (one pid, so each sees the others as
// alive) take and give back the lock; never two at once.
func TestOneHolderAtATime(t *testing.T) {
	dir := t.TempDir()
	var inside, most, taken atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				_, l, err := Acquire(context.Background(), dir, Options{Wait: true, Poll: time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				taken.Add(1)
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				l.Release()
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 || taken.Load() != 90 {
		t.Errorf("%d holders at once, %d takings", most.Load(), taken.Load())
	}
}

func TestHeartbeatAndLoss(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, FileName)
	ctx, l, err := Acquire(context.Background(), dir, Options{Refresh: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	time.Sleep(100 * time.Millisecond)
	if st, _ := os.Stat(p); time.Since(st.ModTime()) > time.Minute {
		t.Errorf("the heartbeat did not refresh the lock (%v old)", time.Since(st.ModTime()))
	}
	if ctx.Err() != nil {
		t.Fatalf("context ended while held: %v", context.Cause(ctx))
	}
	// Another process judged it dead and took it over.
	h := l.Holder()
	h.Token, h.Host = "usurper", "node-b"
	writeHolder(t, dir, h, 0)
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the holder did not notice the loss of its lock")
	}
	if !errors.Is(context.Cause(ctx), ErrLost) {
		t.Errorf("cause %v", context.Cause(ctx))
	}
	l.Release()
	if got, _ := Inspect(dir); got == nil || got.Token != "usurper" {
		t.Errorf("release removed the new holder's lock: %+v", got)
	}
}

func TestStaleBreakGuard(t *testing.T) {
	dir := t.TempDir()
	h := Holder{Host: "node-b", PID: 1, Token: "dead"}
	writeHolder(t, dir, h, time.Hour)
	guard := filepath.Join(dir, FileName+".break")
	// A fresh guard: someone else is taking it over; this process waits.
	os.WriteFile(guard, []byte(`{"token":"x"}`), 0o644)
	if _, _, err := Acquire(context.Background(), dir, Options{}); err == nil {
		t.Fatal("took a lock over while another process held lock.break")
	}
	// A guard left by a process that died mid-takeover expires too.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(guard, old, old)
	_, l, err := Acquire(context.Background(), dir, Options{Wait: true, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left %d files", len(entries))
	}
}

// TestKilledHolder runs a real process that takes the lock, kills it with
// SIGKILL, and takes the lock over.
func TestKilledHolder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGKILL")
	}
	dir := t.TempDir()
	c := exec.Command(os.Args[0], "-test.run=^TestHelperHold$")
	c.Env = append(os.Environ(), "RUNLOCK_HELPER_DIR="+dir)
	stdout, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "held" {
		c.Process.Kill()
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, _, err = Acquire(context.Background(), dir, Options{})
	var held *HeldError
	if !errors.As(err, &held) || held.Holder.PID != c.Process.Pid {
		t.Errorf("while the helper holds it: %v", err)
	}
	c.Process.Kill()
	c.Wait()
	_, l, err := Acquire(context.Background(), dir, Options{})
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

// TestHelperHold is the child process of TestKilledHolder.
func TestHelperHold(t *testing.T) {
	dir := os.Getenv("RUNLOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("a helper process")
	}
	if _, _, err := Acquire(context.Background(), dir, Options{}); err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("held\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
