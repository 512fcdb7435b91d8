package collectortest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSServer answers A and SRV questions on loopback UDP from tables a test
// can change (Set), so a DNS resolver can be tested without the system's
// DNS: a Kubernetes headless Service's SRV records, for example.
type DNSServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	A    map[string][]net.IP
	SRV  map[string][]net.SRV
	Fail bool // answer SERVFAIL to everything
	done chan struct{}
}

// StartDNSServer listens on a free loopback UDP port until the test ends.
func StartDNSServer(t testing.TB) *DNSServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &DNSServer{conn: conn, A: map[string][]net.IP{}, SRV: map[string][]net.SRV{}, done: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() { _ = conn.Close(); <-s.done })
	return s
}

// Addr is the server's host:port.
func (s *DNSServer) Addr() string { return s.conn.LocalAddr().String() }

// Set changes the tables under the server's lock.
func (s *DNSServer) Set(fn func(s *DNSServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

func (s *DNSServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		hdr, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		if resp, err := s.answer(hdr, q); err == nil {
			_, _ = s.conn.WriteToUDP(resp, from)
		}
	}
}

func (s *DNSServer) answer(hdr dnsmessage.Header, q dnsmessage.Question) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := strings.TrimSuffix(q.Name.String(), ".")
	rcode := dnsmessage.RCodeSuccess
	if s.Fail {
		rcode = dnsmessage.RCodeServerFailure
	} else if _, ok := s.A[name]; !ok {
		if _, ok := s.SRV[name]; !ok {
			rcode = dnsmessage.RCodeNameError
		}
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: hdr.ID, Response: true, Authoritative: true, RCode: rcode})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range s.A[name] {
			var a [4]byte
			copy(a[:], ip.To4())
			if err := b.AResource(rh, dnsmessage.AResource{A: a}); err != nil {
				return nil, err
			}
		}
	case dnsmessage.TypeSRV:
		for _, rec := range s.SRV[name] {
			target, err := dnsmessage.NewName(rec.Target)
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(rh, dnsmessage.SRVResource{Priority: rec.Priority, Weight: rec.Weight, Port: rec.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}
