package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// process is a child process the bench started: pushd or a baseline.
type process struct {
	cmd     *exec.Cmd
	addrs   []string
	done    chan struct{}
	dataDir string // removed by stop when set
}

// startProcess runs bin with args and waits until it prints a line that
// matches ready (on stdout or stderr); the submatches are its addresses.
func startProcess(ctx context.Context, ready *regexp.Regexp, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	select {
	case p.addrs = <-found:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("bench: %s exited before it was ready", bin)
	case <-time.After(30 * time.Second):
		p.stop()
		return nil, fmt.Errorf("bench: %s not ready after 30s", bin)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// stop interrupts the process and waits for it, killing it after 10s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	if p.dataDir != "" {
		os.RemoveAll(p.dataDir)
	}
}

// rss is the process's resident set size in bytes.
func (p *process) rss() (int64, error) {
	return readRSS(p.cmd.Process.Pid)
}

// cpu is the process's user + system CPU time so far.
func (p *process) cpu() (time.Duration, error) {
	return readCPU(p.cmd.Process.Pid)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTick = 100

func readCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	// Fields after the command name (which may hold spaces) start after
	// the last ')'; utime and stime are fields 14 and 15 of the line.
	rest := string(b)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("bench: short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bench: bad /proc stat")
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

func readRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("bench: VmRSS not found")
}

// benchBin is the binary that runs the baselines: the configured one, or
// the running executable (pushbench itself).
func benchBin(configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	return exe, nil
}

// pushdReady matches pushd's "serving" log line.
var pushdReady = regexp.MustCompile(`pushd node serving"? ws=(\S+) http=(\S+)`)

// startPushd starts a pushd node on loopback ephemeral ports with a fresh
// data directory, which stop removes.
func startPushd(ctx context.Context, bin string, extra ...string) (*process, error) {
	dir, err := os.MkdirTemp("", "pushbench-data-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	args := append([]string{"-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dir}, extra...)
	p, err := startProcess(ctx, pushdReady, bin, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.dataDir = dir
	return p, nil
}
