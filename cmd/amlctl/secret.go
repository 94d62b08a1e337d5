package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// errNoTerminal means there is no terminal to ask on.
var errNoTerminal = errors.New("no terminal to ask on")

// askSecret asks for a secret on the terminal without echoing it; tests
// replace it.
var askSecret = terminalAskSecret

// askConfirm asks a yes/no question on the terminal; tests replace it.
var askConfirm = terminalConfirm

// maxSecretFile caps a secret file (a private key is a few KiB).
const maxSecretFile = 64 << 10

// readSecretFile reads a secret from the file that flag names: the whole
// file for a private key, else its first line without the line end.
func readSecretFile(flag, path string, whole bool) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxSecretFile {
		return "", usagef("%s: %s is not a small regular file", flag, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("%s: %v", flag, err)
	}
	s := string(b)
	if !whole {
		s, _, _ = strings.Cut(s, "\n")
		s = strings.TrimSuffix(s, "\r")
	}
	if strings.TrimSpace(s) == "" {
		return "", usagef("%s: %s is empty", flag, path)
	}
	return s, nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalAskSecret prints prompt on stderr and reads a line from the
// terminal with echo off.
func terminalAskSecret(prompt string) (string, error) {
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", errNoTerminal
	}
	fmt.Fprint(os.Stderr, prompt)
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", errNoTerminal
	}
	defer func() {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
		fmt.Fprintln(os.Stderr)
	}()
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read from the terminal: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// terminalConfirm asks a yes/no question on the terminal; only y or yes is
// yes.
func terminalConfirm(prompt string) (bool, error) {
	if !isTerminal(os.Stdin) {
		return false, errNoTerminal
	}
	fmt.Fprint(os.Stderr, prompt)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, fmt.Errorf("read from the terminal: %w", err)
	}
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes", nil
}
