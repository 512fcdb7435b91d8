package e2e_test

import (
	"net"
	"sync"
	"testing"
	"time"
)

// proxy is a TCP proxy on a 127.0.0.1 port in front of one backend, the
// network path between the agent and it. Blackholed, it behaves like a
// network that drops every packet: nothing is forwarded either way and
// nothing is answered, new connections included (they are accepted and
// held, never refused or reset), unlike a killed process whose port
// answers with RST. Resumed, it forwards again what was held, as TCP
// retransmission would once the path heals, and connects the connections
// accepted meanwhile.
type proxy struct {
	t      *testing.T
	name   string
	target string
	lis    net.Listener

	mu    sync.Mutex
	gate  chan struct{} // closed while forwarding; open (unclosed) while blackholed
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, name, target string) *proxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, name: name, target: target, lis: lis, gate: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.gate)
	p.wg.Go(p.accept)
	t.Cleanup(p.stop)
	return p
}

// addr is the proxy's host:port, what the agent dials.
func (p *proxy) addr() string { return p.lis.Addr().String() }

// blackhole stops all forwarding until resume.
func (p *proxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if isClosedChan(p.gate) {
		p.gate = make(chan struct{})
	}
}

// resume forwards again.
func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !isClosedChan(p.gate) {
		close(p.gate)
	}
}

func isClosedChan(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// pass waits until the proxy forwards; false once it is stopped.
func (p *proxy) pass() bool {
	p.mu.Lock()
	gate, done := p.gate, p.done
	p.mu.Unlock()
	if done {
		return false
	}
	<-gate
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.done
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *proxy) accept() {
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		if !p.track(in) {
			return
		}
		p.wg.Go(func() { p.serve(in) })
	}
}

// serve connects one accepted connection to the target once the path is
// open, then copies both ways.
func (p *proxy) serve(in net.Conn) {
	defer p.untrack(in)
	if !p.pass() {
		return
	}
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as it would with the backend down
	}
	if !p.track(out) {
		return
	}
	defer p.untrack(out)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(out, in); p.untrack(out) })
	wg.Go(func() { p.pump(in, out); p.untrack(in) })
	wg.Wait()
}

// pump copies src to dst, holding every chunk while blackholed (and so,
// through TCP flow control, the sender's further data).
func (p *proxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil { // EOF or closed: the serve goroutine closes both sides
			return
		}
	}
}

// stop closes the listener and every connection, and waits for the
// proxy's goroutines.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	if !isClosedChan(p.gate) {
		close(p.gate)
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.lis.Close()
	p.wg.Wait()
}
