package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sshdPath is where Debian's openssh-server puts the daemon
// (scripts/deps.sh installs it).
const sshdPath = "/usr/sbin/sshd"

// sshd is a real OpenSSH server the test runs on a loopback port, with its
// own host keys and config, and a test user made for it (with a password, a
// plain key and a passphrase-protected key).
type sshd struct {
	t    testing.TB
	dir  string
	port int
	user string
	uid  int
	home string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}

	// Files for amlctl's flags.
	keyFile, lockedKeyFile, passphraseFile, passwordFile string
	// ownerKeyFile is a key the machine does not know: an instance's
	// owner's, for --ssh-public-access.
	ownerKeyFile string
	// authorizedKeys is the test user's authorized_keys as the test wrote it.
	authorizedKeys string
	// fingerprint is the SHA256 fingerprint of the ed25519 host key (what
	// the head pins by preference); otherFingerprint is of a key that is
	// not the server's.
	fingerprint, otherFingerprint string
}

func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startSSHD makes the test user and starts sshd.
func startSSHD(t testing.TB) *sshd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test runs OpenSSH's sshd, which must run as root to log in its test user: run it as root (make test does)")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("%s is missing: run scripts/deps.sh (it installs openssh-server): %v", sshdPath, err)
	}
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	d := &sshd{t: t, dir: t.TempDir(), user: "amldt" + hex.EncodeToString(rb[:]), out: &syncBuffer{}}
	mustRun(t, "useradd", "--create-home", "--shell", "/bin/sh", d.user)
	t.Cleanup(d.removeUser)
	u, err := user.Lookup(d.user)
	if err != nil {
		t.Fatal(err)
	}
	d.uid, _ = strconv.Atoi(u.Uid)
	d.home = u.HomeDir
	password := "pw-" + hex.EncodeToString(rb[:]) + "-Secret"
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(d.user + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v\n%s", err, out)
	}
	d.passwordFile = d.write("password", password+"\n")
	d.passphraseFile = d.write("passphrase", "correct horse battery\n")

	for _, k := range []struct{ file, typ, pass string }{
		{"host_ed25519", "ed25519", ""}, {"host_rsa", "rsa", ""}, {"other_host", "ed25519", ""},
		{"client", "ed25519", ""}, {"client_locked", "ed25519", "correct horse battery"}, {"owner", "ed25519", ""},
	} {
		args := []string{"-q", "-t", k.typ, "-N", k.pass, "-C", k.file, "-f", filepath.Join(d.dir, k.file)}
		if k.typ == "rsa" {
			args = append(args, "-b", "2048")
		}
		mustRun(t, "ssh-keygen", args...)
	}
	d.keyFile = filepath.Join(d.dir, "client")
	d.lockedKeyFile = filepath.Join(d.dir, "client_locked")
	d.ownerKeyFile = filepath.Join(d.dir, "owner")
	d.fingerprint = fingerprintOf(t, filepath.Join(d.dir, "host_ed25519.pub"))
	d.otherFingerprint = fingerprintOf(t, filepath.Join(d.dir, "other_host.pub"))

	sshDir := filepath.Join(d.home, ".ssh")
	pubs := readFile(t, d.keyFile+".pub") + readFile(t, d.lockedKeyFile+".pub")
	d.authorizedKeys = pubs
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sshDir, "authorized_keys"), []byte(pubs), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "chown", "-R", d.user+":"+d.user, sshDir)

	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		t.Fatal(err)
	}
	d.port = freePort(t)
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostKey %s
PidFile %s
AuthorizedKeysFile .ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers %s
LogLevel VERBOSE
`, d.port, filepath.Join(d.dir, "host_ed25519"), filepath.Join(d.dir, "host_rsa"), filepath.Join(d.dir, "sshd.pid"), d.user)
	confFile := d.write("sshd_config", conf)
	d.cmd = exec.Command(sshdPath, "-D", "-e", "-f", confFile)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(d.stop)
	waitFor(t, 10*time.Second, "sshd to listen", func() (bool, string) {
		c, err := net.DialTimeout("tcp", d.addr(), time.Second)
		if err == nil {
			c.Close()
			return true, ""
		}
		return false, err.Error() + "\n" + d.out.String()
	})
	return d
}

func (d *sshd) addr() string { return fmt.Sprintf("127.0.0.1:%d", d.port) }

func (d *sshd) write(name, content string) string {
	d.t.Helper()
	p := filepath.Join(d.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (d *sshd) stop() {
	if d.cmd.Process != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	}
}

// userProcesses lists the test user's live processes ("pid cmdline").
func (d *sshd) userProcesses() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || int(st.Uid) != d.uid {
			continue
		}
		// A zombie runs nothing: it waits for init (slow in containers) to reap it.
		if stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat"); bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		out = append(out, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(bytes.TrimRight(cl, "\x00"), []byte{0}, []byte{' '})))
	}
	return out
}

// removeUser kills what the test user still runs (by pid) and removes it.
func (d *sshd) removeUser() {
	for _, p := range d.userProcesses() {
		if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	time.Sleep(100 * time.Millisecond)
	_ = exec.Command("userdel", "--remove", "--force", d.user).Run()
}

// logins counts the authentications sshd logged (accepted or failed).
func (d *sshd) logins() int {
	n := 0
	for _, l := range strings.Split(d.out.String(), "\n") {
		if strings.Contains(l, "Accepted ") || strings.Contains(l, "Failed ") {
			n++
		}
	}
	return n
}

func fingerprintOf(t testing.TB, pub string) string {
	t.Helper()
	f := strings.Fields(mustRun(t, "ssh-keygen", "-l", "-E", "sha256", "-f", pub))
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("ssh-keygen -l: %v", f)
	}
	return f[1]
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sshLogin reports whether key logs in to the machine with OpenSSH's own
// client (checking the machine's host key).
func (d *sshd) sshLogin(key string) error {
	known := filepath.Join(d.dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", d.port, readFile(d.t, filepath.Join(d.dir, "host_ed25519.pub")))
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		return err
	}
	out, err := exec.Command("ssh", "-i", key, "-p", strconv.Itoa(d.port), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+known, "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlgorithms=ssh-ed25519",
		d.user+"@127.0.0.1", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}
