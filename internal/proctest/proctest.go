// Package proctest runs pushd's commands as real processes for tests:
// build a binary once, start it on ephemeral loopback ports, wait for the
// line saying it serves, SIGKILL it. Only tests import it.
package proctest

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds the command in pkgDir (with the race detector when race is
// set) into dir and returns the binary's path.
func Build(dir, pkgDir, name string, race bool) (string, error) {
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkgDir)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// Proc is a node process (pushd or pushrelay) started by a test.
type Proc struct {
	WSAddr, HTTPAddr string
	// Gossip is the node's bound gossip address, empty when standalone.
	Gossip string

	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  strings.Builder // guarded by mu
}

var servingRE = regexp.MustCompile(`pushd node serving"? ws=(\S+) http=(\S+).* gossip=(\S*)`)

// Start runs bin with args; shell, if not empty, is a shell prefix such as
// "ulimit -n 300 &&". It returns once the node logs that it serves, and
// SIGKILLs it when the test ends.
func Start(t *testing.T, bin, shell string, args ...string) *Proc {
	t.Helper()
	var cmd *exec.Cmd
	if shell != "" {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = "'" + a + "'"
		}
		cmd = exec.Command("sh", "-c", shell+" exec "+bin+" "+strings.Join(quoted, " "))
	} else {
		cmd = exec.Command(bin, args...)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan [3]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingRE.FindStringSubmatch(line); m != nil {
				select {
				case ready <- [3]string{m[1], m[2], strings.Trim(m[3], `"`)}:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if out := p.Output(); strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", bin, out)
		}
	})
	select {
	case a := <-ready:
		p.WSAddr, p.HTTPAddr, p.Gossip = a[0], a[1], a[2]
	case <-p.done:
		t.Fatalf("%s exited before serving:\n%s", bin, p.Output())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start:\n%s", bin, p.Output())
	}
	return p
}

// Output is what the process logged so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM (a graceful shutdown) and waits up to timeout for the
// process to exit; it reports whether it did.
func (p *Proc) Stop(timeout time.Duration) bool {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Pause stops the process (SIGSTOP) until Resume: it keeps its sockets and
// answers nothing, like a node stuck on a dead disk.
func (p *Proc) Pause() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Proc) Resume() { _ = p.cmd.Process.Signal(syscall.SIGCONT) }
