package fanoutexporter

import (
	"encoding/binary"
	"math/bits"
)

// The routing hash must be identical in every otelcsp instance and every
// release, so that all front-tier instances with the same backend list send a
// trace to the same backend. hash/maphash is seeded per process and
// unusable here; these are fixed 64-bit functions (FNV-1a for bytes,
// splitmix64's finalizer to spread the bits).

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// mix64 is splitmix64's finalizer: a bijection on uint64 with full avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashID hashes a 16-byte trace ID. Trace IDs are random already, but not
// always (some SDKs put a timestamp in the high bytes), so both halves go
// through the mixer.
func hashID(id [16]byte) uint64 {
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	return mix64(lo ^ mix64(hi))
}

// hasher accumulates FNV-1a over strings and bytes; Sum finalizes it.
// Every field is terminated so that ("ab","c") and ("a","bc") differ.
type hasher uint64

func newHasher() hasher { return fnvOffset }

func (h hasher) str(s string) hasher {
	for i := 0; i < len(s); i++ {
		h = (h ^ hasher(s[i])) * fnvPrime
	}
	return (h ^ 0xff) * fnvPrime
}

func (h hasher) bytes(b []byte) hasher {
	for _, c := range b {
		h = (h ^ hasher(c)) * fnvPrime
	}
	return (h ^ 0xff) * fnvPrime
}

func (h hasher) u64(v uint64) hasher {
	return hasher(mix64(uint64(h) ^ bits.RotateLeft64(v, 17)))
}

func (h hasher) sum() uint64 { return mix64(uint64(h)) }
