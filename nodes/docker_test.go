package nodes

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"testing"
)

func TestSplitHeadURLAndLocalHosts(t *testing.T) {
	for _, tc := range []struct {
		in, host, port string
		local, bad     bool
	}{
		{in: "http://127.0.0.1:7070", host: "127.0.0.1", port: "7070", local: true},
		{in: "127.0.0.1:7070", host: "127.0.0.1", port: "7070", local: true},
		{in: "http://[::]:7070", host: "::", port: "7070", local: true},
		{in: "http://0.0.0.0:7070", host: "0.0.0.0", port: "7070", local: true},
		{in: "http://localhost:80", host: "localhost", port: "80", local: true},
		{in: "http://127.0.0.2:1", host: "127.0.0.2", port: "1", local: true},
		{in: "http://10.1.2.3:7070", host: "10.1.2.3", port: "7070"},
		{in: "https://head.example:443", host: "head.example", port: "443"},
		{in: "http://head.example", bad: true},
	} {
		host, port, err := splitHeadURL(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("splitHeadURL(%q) = %q %q, want an error", tc.in, host, port)
			}
			continue
		}
		if err != nil || host != tc.host || port != tc.port {
			t.Errorf("splitHeadURL(%q) = %q %q %v, want %q %q", tc.in, host, port, err, tc.host, tc.port)
		}
		if got := isLocalHost(host); got != tc.local {
			t.Errorf("isLocalHost(%q) = %v, want %v", host, got, tc.local)
		}
	}
}

// echoServer answers each line with "echo: " and the line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "echo: %s\n", sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestForwarderJoinsConnectionsToTheHead(t *testing.T) {
	dst := echoServer(t)
	f, err := listenForward("127.0.0.1:0", dst, slog.New(slog.DiscardHandler))
	if err != nil || f == nil {
		t.Fatalf("listenForward = %v, %v", f, err)
	}
	defer f.close()
	for i := range 3 {
		c, err := net.Dial("tcp", f.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "hello %d\n", i)
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || got != fmt.Sprintf("echo: hello %d\n", i) {
			t.Fatalf("through the forwarder: %q, %v", got, err)
		}
	}
}

func TestForwarderCloseEndsOpenConnections(t *testing.T) {
	dst := echoServer(t)
	f, err := listenForward("127.0.0.1:0", dst, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, "x")
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	f.close() // returns once every goroutine ended
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatal("the connection outlived the forwarder")
	}
}

func TestListenForwardOnABusyAddressLeavesItToItsOwner(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := listenForward(ln.Addr().String(), "127.0.0.1:1", slog.New(slog.DiscardHandler))
	if f != nil || err != nil {
		t.Fatalf("listenForward on a busy address = %v, %v; want nil, nil", f, err)
	}
}
