package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkUserAuth measures the login read (user, tokens, unsealed secret)
// with the users picked at random from small and large tables: the large one
// no longer fits SQLite's page cache, as in production.
func BenchmarkUserAuth(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		db := mustOpen(b) // once per size: b.Run calls its function for each b.N
		key := make([]byte, 20)
		seq := func(yield func(ImportUser, error) bool) {
			for i := range n {
				if !yield(importUser(fmt.Sprintf("user%07d", i), key), nil) {
					return
				}
			}
		}
		if _, err := db.Import(context.Background(), seq, ImportOptions{}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := db.UserAuth(ctx, fmt.Sprintf("user%07d", rand.IntN(n))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
