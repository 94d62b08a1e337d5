package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestMain lets the test binary act as an agent that starts a command and
// is then killed (see TestKilledAgentLeavesNoCommandBehind).
func TestMain(m *testing.M) {
	if os.Getenv("AMLD_TEST_PDEATH_HELPER") == "1" {
		pdeathHelper()
		return
	}
	os.Exit(m.Run())
}

// pdeathHelper starts a command, ends many OS threads (as goroutines that
// exit while locked do), prints the command's pid, and waits to be killed.
func pdeathHelper() {
	h, err := NewProcessRuntime().Start(context.Background(), Spec{
		Command: []string{"sh", "-c", "echo $$; exec sleep 1000"},
		Dir:     os.TempDir(),
	})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	line, _ := bufio.NewReader(h.Output()).ReadString('\n')
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { runtime.LockOSThread() }) // the thread ends with the goroutine
	}
	wg.Wait()
	fmt.Print(line)
	select {}
}

func TestKilledAgentLeavesNoCommandBehind(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "AMLD_TEST_PDEATH_HELPER=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("helper said %q", line)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the command died with the helper's other threads: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	waitProcessGone(t, pid)
}

func TestProcessExitCodes(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "noexec.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.sh"), []byte("#!/bin/sh\nexit 4\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		command   []string
		code      int  // exit code, or start error code
		startFail bool // the command must not start
	}{
		{"exit status", []string{"sh", "-c", "exit 7"}, 7, false},
		{"killed by a signal", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, false},
		{"relative path", []string{"./ok.sh"}, 4, false},
		{"missing relative path", []string{"./missing.sh"}, ExitNotFound, true},
		{"not executable", []string{"./noexec.sh"}, ExitNotExecutable, true},
		{"not in PATH", []string{"no-such-command-amld"}, ExitNotFound, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := NewProcessRuntime().Start(context.Background(), Spec{Command: tc.command, Dir: dir})
			if tc.startFail {
				var se *StartError
				if !errors.As(err, &se) || se.Code != tc.code {
					t.Fatalf("Start = %v, want a StartError with code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, h.Output())
			<-h.Done()
			if got := h.ExitCode(); got != tc.code {
				t.Fatalf("exit code %d, want %d", got, tc.code)
			}
		})
	}
}
