package store_test

import (
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// *DB is the verifier's Store (checked here: store cannot import verifier).
var _ verifier.Store = (*store.DB)(nil)
