package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/firstfactor"
	"github.com/radotp/radotp/verifier"
)

// firstFactors are the first-factor backends a configuration uses, built
// once at start-up: first_factor.backend (which Check uses) and each other
// backend a [[client]] names in first_factor. One LDAP connection pool serves
// every client that uses LDAP.
type firstFactors struct {
	verifier.FirstFactor                                 // first_factor.backend
	backend              string                          // its name
	named                map[string]verifier.FirstFactor // every backend built, by name
	closers              []func() error
}

// firstFactorFromConfig builds the backends cfg uses. local is radotp's own
// hash check (verifier.Local). The FirstFactor returned is the default
// backend, to pass to verifier.Options.Backend; radiusClients gives clients
// with their own first_factor theirs. close closes the LDAP connections.
func firstFactorFromConfig(cfg *config.Config, local verifier.FirstFactor, log *slog.Logger) (verifier.FirstFactor, func() error, error) {
	ff := &firstFactors{backend: cfg.FirstFactor.Backend, named: map[string]verifier.FirstFactor{}}
	for _, name := range config.Backends {
		if !cfg.UsesBackend(name) {
			continue
		}
		b, closer, err := buildFirstFactor(cfg, name, local, log)
		if err != nil {
			ff.Close()
			return nil, nil, err
		}
		ff.named[name] = b
		if closer != nil {
			ff.closers = append(ff.closers, closer)
		}
	}
	ff.FirstFactor = ff.named[ff.backend]
	if ff.FirstFactor == nil {
		ff.Close()
		return nil, nil, fmt.Errorf("first_factor.backend %q: unknown backend", ff.backend)
	}
	if ff.backend != config.BackendLocal {
		log.Info("first factor", "backend", ff.backend, "auto_create_users", cfg.FirstFactor.AutoCreate())
	}
	return ff, ff.Close, nil
}

// Close closes every backend that holds connections.
func (ff *firstFactors) Close() error {
	var errs []error
	for _, c := range ff.closers {
		errs = append(errs, c())
	}
	ff.closers = nil
	return errors.Join(errs...)
}

// clientFirstFactor returns the backend for a client whose first_factor is
// name: nil (the verifier's default) for "" or the default backend's name.
// set is what firstFactorFromConfig returned; nil means every client uses
// the default. A backend that was not built at start-up (a reload that
// names a new one) is an error: it needs a restart.
func clientFirstFactor(set verifier.FirstFactor, client, name string) (verifier.FirstFactor, error) {
	ff, ok := set.(*firstFactors)
	if name == "" || !ok || name == ff.backend {
		return nil, nil
	}
	if b := ff.named[name]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("client %q: first_factor = %q was not configured when radotp started; restart radotp to use it", client, name)
}

func buildFirstFactor(cfg *config.Config, name string, local verifier.FirstFactor, log *slog.Logger) (verifier.FirstFactor, func() error, error) {
	switch name {
	case config.BackendLocal:
		return local, nil, nil
	case config.BackendNone:
		return firstfactor.None{}, nil, nil
	case config.BackendLDAP:
		c := cfg.FirstFactor.LDAP
		var roots *x509.CertPool
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("first_factor.ldap.ca_file: %w", err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("first_factor.ldap.ca_file %s: no PEM certificate in it", c.CAFile)
			}
		}
		l, err := firstfactor.NewLDAP(firstfactor.LDAPOptions{
			URLs:           c.URLs,
			StartTLS:       c.UsesStartTLS(),
			RootCAs:        roots,
			BindDNTemplate: c.BindDNTemplate,
			BaseDN:         c.BaseDN,
			Filter:         c.Filter,
			BindDN:         c.BindDN,
			BindPassword:   string(c.BindPassword),
			GroupAttribute: c.GroupAttribute,
			RequiredGroup:  c.RequiredGroup,
			ExemptGroup:    c.ExemptGroup,
			Timeout:        c.Timeout.Duration,
			PoolSize:       c.PoolSize,
			Logger:         log,
		})
		if err != nil {
			return nil, nil, err
		}
		return l, l.Close, nil
	case config.BackendRadius:
		c := cfg.FirstFactor.Radius
		r, err := firstfactor.NewRadius(firstfactor.RadiusOptions{
			Servers:                          c.Servers,
			Secret:                           c.SecretBytes,
			Timeout:                          c.Timeout.Duration,
			Retries:                          c.Retries,
			NASIdentifier:                    c.NASIdentifier,
			AllowMissingMessageAuthenticator: !c.RequiresMessageAuthenticator(),
			Logger:                           log,
		})
		if err != nil {
			return nil, nil, err
		}
		return r, r.Close, nil
	}
	return nil, nil, fmt.Errorf("first_factor: unknown backend %q", name)
}

// firstFactorChanged reports whether [first_factor] differs between a and b:
// its backends are built at start-up, so a change needs a restart.
func firstFactorChanged(a, b *config.Config) bool {
	return !reflect.DeepEqual(a.FirstFactor, b.FirstFactor)
}
