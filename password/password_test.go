package password

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fast keeps tests quick; the format and the check are the same.
var fast = Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

func TestHashAndCheck(t *testing.T) {
	h, err := Hash([]byte("hunter2"), OWASP)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id PHC with OWASP parameters", h)
	}
	for _, tc := range []struct {
		name string
		pw   string
		want bool
	}{{"Right", "hunter2", true}, {"Wrong", "hunter3", false}, {"Empty", "", false}, {"Prefix", "hunter", false}} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := Check(h, []byte(tc.pw))
			if err != nil || ok != tc.want {
				t.Fatalf("Check(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
			}
		})
	}
}

func TestSaltIsRandom(t *testing.T) {
	a, _ := Hash([]byte("x"), fast)
	b, _ := Hash([]byte("x"), fast)
	if a == b {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// A known argon2id PHC string (from the reference implementation's format)
// must verify: guards against drifting from the standard encoding.
func TestKnownArgon2idVector(t *testing.T) {
	// argon2 CLI: echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -l 32 -e
	const h = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	ok, err := Check(h, []byte("password"))
	if err != nil || !ok {
		t.Fatalf("reference vector: ok=%v err=%v", ok, err)
	}
	if ok, _ := Check(h, []byte("passwore")); ok {
		t.Fatal("reference vector accepted a wrong password")
	}
}

func TestBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Check(string(b), []byte("s3cret")); !ok || err != nil {
		t.Fatalf("bcrypt right password: %v %v", ok, err)
	}
	if ok, err := Check(string(b), []byte("s3cres")); ok || err != nil {
		t.Fatalf("bcrypt wrong password: %v %v", ok, err)
	}
}

func TestMalformedHashes(t *testing.T) {
	for name, h := range map[string]string{
		"Empty":          "",
		"Plain":          "hunter2",
		"MD5Crypt":       "$1$abc$def",
		"FewFields":      "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
		"BadVersion":     "$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
		"HugeMemory":     "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
		"HugeTime":       "$argon2id$v=19$m=64,t=1000,p=1$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
		"ZeroThreads":    "$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$c2FsdHNhbHRzYWx0c2FsdA",
		"BadSalt":        "$argon2id$v=19$m=64,t=1,p=1$!!!$c2FsdHNhbHRzYWx0c2FsdA",
		"ShortKey":       "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$c2FsdA",
		"BcryptTruncate": "$2b$04$abc",
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := Check(h, []byte("hunter2"))
			if err == nil || ok {
				t.Fatalf("Check(%q) = %v, %v; want an error", h, ok, err)
			}
		})
	}
}

// The pool never runs more checks at once than it has slots.
func TestHasherBoundsConcurrency(t *testing.T) {
	h := NewHasher(2)
	hash, _ := Hash([]byte("x"), Params{Memory: 2048, Time: 3, Threads: 1, KeyLen: 32, SaltLen: 16})
	var cur, peak atomic.Int32
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case h.slots <- struct{}{}:
			case <-time.After(5 * time.Second):
				t.Error("no slot")
				return
			}
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			_, _ = Check(hash, []byte("x"))
			cur.Add(-1)
			<-h.slots
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Fatalf("peak concurrency %d > 2 slots", p)
	}
	// And the public method gives up when the context ends while waiting.
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Check(ctx, hash, []byte("x")); err == nil {
		t.Fatal("Check with all slots taken and an expired context returned no error")
	}
}

func BenchmarkCheckOWASP(b *testing.B) {
	h, _ := Hash([]byte("hunter2"), OWASP)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = Check(h, []byte("hunter2"))
	}
}
