// Package runlock locks a run directory while one process trains or probes
// it, against other processes on the same machine and on other machines
// that share the directory over a network file system.
//
// The lock is a file, DIR/lock, holding JSON that names its holder: host,
// pid, the command, when it started, and a random token. It is taken by
// writing that file under a unique temporary name and hard-linking it to
// DIR/lock: link(2) fails if the name exists, atomically, on local file
// systems and on NFS (v2 and up) alike, and the file appears whole, never
// half-written. (O_EXCL creation is atomic on NFSv3 and later too, but
// leaves an empty file visible until its content is written; link is the
// recipe open(2) recommends for lock files on NFS, with a check of the
// link count when the reply to link is lost.)
//
// A lock left by a process that died is taken over. How death is judged:
//
//   - Holder on this host (same host name): the holder's pid is checked with
//     kill(pid, 0), and on Linux the process's start time and the machine's
//     boot id are compared too, so a reused pid or a reboot is not mistaken
//     for the holder. This is exact and immediate.
//   - Holder on another host: its pid means nothing here. The holder
//     refreshes the lock file's modification time every Refresh (a
//     heartbeat, 20 s by default); a lock whose heartbeat is older than
//     StaleAfter (2 min by default) by this machine's clock is taken over.
//     That needs the hosts' clocks to agree to well within StaleAfter -
//     Refresh (NTP does), and a process that is stopped (SIGSTOP, a
//     suspended job) longer than StaleAfter loses its lock: at its next
//     heartbeat it finds another token in the file and its context is
//     cancelled with ErrLost, so it stops without writing.
//
// What cannot be judged: a holder on another host that is alive but cannot
// refresh (the file system hangs) looks dead after StaleAfter; a holder
// that died less than StaleAfter ago on another host looks alive, so a
// requeued task on another node waits that long (with Wait) or fails at
// once (without). Two processes that take over the same stale lock at the
// same moment are serialised by a second lock file, DIR/lock.break, taken
// the same way; a lock.break left by a process that died mid-takeover (a
// window of microseconds) is removed after StaleAfter.
//
// What the file system must give: atomic link(2) and unlink(2), and
// close-to-open consistency (NFS gives both; the lock file is read through
// a fresh open, which revalidates its attributes, so the attribute cache
// does not hide a heartbeat). Lustre and GPFS give these too. File systems
// without hard links (some FUSE and object-store mounts) are refused with
// a clear error rather than locked unsafely. (What the lock guards, the
// run's files, is written to temporary names and renamed into place, which
// NFS makes atomic as well.)
package runlock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sincere-ml/sincere/internal/regfile"
)

// FileName is the lock file's name inside the directory it locks.
const FileName = "lock"

// Defaults of Options.
const (
	DefaultRefresh    = 20 * time.Second
	DefaultStaleAfter = 2 * time.Minute
	DefaultPoll       = time.Second
)

// ErrLost is the cause of a holder's context ending when another process
// has taken its lock over (it was judged dead): the holder must stop
// without writing anything more into the directory.
var ErrLost = errors.New("the run directory's lock was taken over by another process")

// Holder describes the process that holds a lock: the content of the lock
// file.
type Holder struct {
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Command string    `json:"command,omitempty"`
	Since   time.Time `json:"since"`
	// BootID and StartTicks identify the process beyond its pid on Linux
	// (empty and 0 elsewhere): /proc/sys/kernel/random/boot_id and the
	// start time in /proc/PID/stat.
	BootID     string `json:"boot_id,omitempty"`
	StartTicks uint64 `json:"start_ticks,omitempty"`
	// Token is random, unique to one taking of the lock.
	Token string `json:"token"`
}

// String names the holder for an error message.
func (h Holder) String() string {
	s := fmt.Sprintf("pid %d on host %s", h.PID, h.Host)
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	if !h.Since.IsZero() {
		s += ", since " + h.Since.Local().Format(time.DateTime)
	}
	return s
}

// HeldError says that a live process holds the lock.
type HeldError struct {
	// Dir is the locked directory.
	Dir string
	// Holder is who holds it; zero when the lock file could not be read.
	Holder Holder
	// Heartbeat is the lock file's modification time.
	Heartbeat time.Time
	// Remote is true when the holder is on another host (judged by its
	// heartbeat, not its pid).
	Remote     bool
	staleAfter time.Duration
}

func (e *HeldError) Error() string {
	who := "a process whose lock file cannot be read"
	if e.Holder.Token != "" {
		who = e.Holder.String()
	}
	msg := fmt.Sprintf("%s is in use by %s; wait for it with --wait-lock", e.Dir, who)
	if e.Remote || e.Holder.Token == "" {
		msg += fmt.Sprintf(", or if that process is gone, the lock (%s) is taken over %v after its last heartbeat (%s)",
			filepath.Join(e.Dir, FileName), e.staleAfter, e.Heartbeat.Local().Format(time.DateTime))
	}
	return msg
}

// Options says how to take a lock.
type Options struct {
	// Wait waits for a held lock to be released (or judged stale) instead
	// of failing at once with a *HeldError.
	Wait bool
	// OnWait, if not nil, is called once when Wait starts waiting.
	OnWait func(*HeldError)
	// Command describes the holder, e.g. "sincere pretrain".
	Command string
	// Refresh is the heartbeat interval, StaleAfter the age of a heartbeat
	// from another host after which the lock is taken over, Poll the
	// interval of checks while waiting; zero means the defaults.
	Refresh, StaleAfter, Poll time.Duration
}

func (o *Options) defaults() {
	if o.Refresh <= 0 {
		o.Refresh = DefaultRefresh
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
}

// Lock is a held lock.
type Lock struct {
	path   string
	holder Holder
	cancel context.CancelCauseFunc
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// Holder returns the lock's own holder record.
func (l *Lock) Holder() Holder { return l.holder }

// Acquire locks dir, which must exist. It returns a context derived from
// ctx that is cancelled with cause ErrLost if the lock is taken over while
// held, and the lock, which Release gives back. A lock held by a live
// process is a *HeldError, or with opt.Wait a wait until it is released
// or ctx ends.
func Acquire(ctx context.Context, dir string, opt Options) (context.Context, *Lock, error) {
	opt.defaults()
	me, err := self(opt.Command)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(dir, FileName)
	waited := false
	for {
		ok, err := tryLink(path, me)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			break
		}
		held, err := judge(path, me, opt)
		if err != nil {
			return nil, nil, err
		}
		if held == nil {
			continue // stale and removed, or released meanwhile: try again
		}
		held.Dir = dir
		if !opt.Wait {
			return nil, nil, held
		}
		if !waited && opt.OnWait != nil {
			opt.OnWait(held)
		}
		waited = true
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("waiting for the lock of %s: %w", dir, context.Cause(ctx))
		case <-time.After(opt.Poll):
		}
	}
	lctx, cancel := context.WithCancelCause(ctx)
	l := &Lock{path: path, holder: me, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	go l.heartbeat(opt.Refresh)
	return lctx, l, nil
}

// Release stops the heartbeat and removes the lock file if it is still
// this lock's. It is safe to call more than once.
func (l *Lock) Release() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.cancel(context.Canceled)
		if h, rerr := read(l.path); rerr == nil && h.Token == l.holder.Token {
			if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				err = fmt.Errorf("releasing the lock: %w", rerr)
			}
		}
	})
	return err
}

// heartbeat refreshes the lock file's modification time, and cancels the
// lock's context when the file no longer holds this lock's token.
func (l *Lock) heartbeat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		h, err := read(l.path)
		if errors.Is(err, os.ErrNotExist) || err == nil && h.Token != l.holder.Token {
			l.cancel(ErrLost)
			return
		}
		if err == nil {
			now := time.Now()
			_ = os.Chtimes(l.path, now, now) // a failed touch is retried next time
		}
	}
}

// Inspect returns the holder of dir's lock, if any: nil when the directory
// has no lock file. The holder may be dead; Inspect does not judge.
func Inspect(dir string) (*Holder, error) {
	h, err := read(filepath.Join(dir, FileName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &h, nil
}

// self describes this process as a holder, with a fresh token.
func self(command string) (Holder, error) {
	host, err := os.Hostname()
	if err != nil {
		return Holder{}, fmt.Errorf("lock: the host name: %w", err)
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return Holder{}, err
	}
	pid := os.Getpid()
	return Holder{Host: host, PID: pid, Command: command, Since: time.Now().UTC().Truncate(time.Second),
		BootID: bootID(), StartTicks: startTicks(pid), Token: hex.EncodeToString(tok)}, nil
}

// tryLink writes h to a unique file beside path and links it to path; it
// reports whether the lock was taken.
func tryLink(path string, h Holder) (bool, error) {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return false, err
	}
	tmp := fmt.Sprintf("%s.%s.%d.%s", path, h.Host, h.PID, h.Token[:8])
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return false, fmt.Errorf("lock: %w", err)
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	// The reply to a link that succeeded may be lost on NFS: a link count
	// of 2 says it did.
	if st, serr := os.Stat(tmp); serr == nil {
		if n, ok := linkCount(st); ok && n == 2 {
			return true, nil
		}
	}
	return false, fmt.Errorf("lock %s: %w (the file system must support hard links)", path, err)
}

// read reads a lock file through a fresh open (which revalidates a network
// file system's cached attributes).
func read(path string) (Holder, error) {
	h, _, err := readStat(path)
	return h, err
}

// errUnreadable marks a lock file that exists but does not parse.
var errUnreadable = errors.New("unreadable lock file")

func readStat(path string) (Holder, time.Time, error) {
	f, _, err := regfile.Open(path) // a FIFO in its place must not block
	if err != nil {
		return Holder{}, time.Time{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Holder{}, time.Time{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<16))
	if err != nil {
		return Holder{}, st.ModTime(), err
	}
	var h Holder
	if err := json.Unmarshal(b, &h); err != nil || h.Token == "" {
		return Holder{}, st.ModTime(), errUnreadable
	}
	return h, st.ModTime(), nil
}

// judge looks at the lock file: a live holder is a *HeldError; a dead one
// is removed (under lock.break) and nil returned, as it is when the file
// has gone meanwhile.
func judge(path string, me Holder, opt Options) (*HeldError, error) {
	h, mtime, err := readStat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil && !errors.Is(err, errUnreadable) {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	held := &HeldError{Holder: h, Heartbeat: mtime, Remote: h.Host != me.Host, staleAfter: opt.StaleAfter}
	var stale bool
	switch {
	case err != nil || held.Remote: // judged by the heartbeat alone
		stale = time.Since(mtime) > opt.StaleAfter
	default:
		stale = !alive(h, me)
	}
	if !stale {
		return held, nil
	}
	if err := breakStale(path, h.Token, me, opt); err != nil {
		if errors.Is(err, errBreaking) {
			return held, nil // another process is taking it over
		}
		return nil, err
	}
	return nil, nil
}

// errBreaking: another process holds lock.break.
var errBreaking = errors.New("another process is taking the lock over")

// breakStale removes the lock file if it still holds the stale token,
// holding DIR/lock.break meanwhile so that two processes never take over
// the same lock one after the other (the second removing the first's).
func breakStale(path, token string, me Holder, opt Options) error {
	guard := path + ".break"
	ok, err := tryLink(guard, me)
	if err != nil {
		return err
	}
	if !ok {
		if _, mtime, err := readStat(guard); err == nil || errors.Is(err, errUnreadable) {
			if time.Since(mtime) > opt.StaleAfter {
				os.Remove(guard) // left by a process that died mid-takeover
			}
		}
		return errBreaking
	}
	defer os.Remove(guard)
	h, err := read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if (err == nil || errors.Is(err, errUnreadable)) && h.Token == token {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("taking over the stale lock %s: %w", path, err)
		}
	}
	return nil
}

// alive reports whether a holder on this host is still running: its pid
// exists and, where both are known, it is the same boot and the same
// process start.
func alive(h, me Holder) bool {
	if h.BootID != "" && me.BootID != "" && h.BootID != me.BootID {
		return false
	}
	if h.PID <= 0 || !pidExists(h.PID) {
		return false
	}
	if h.StartTicks != 0 {
		if now := startTicks(h.PID); now != 0 && now != h.StartTicks {
			return false
		}
	}
	return true
}
