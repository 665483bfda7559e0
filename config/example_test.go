package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const exampleFile = "../config.example.toml"

// schemaKeys lists every TOML key of the Config type, as "section.key"
// ("client.name" for the fields of [[client]]), walking the struct tags.
// It is written apart from the decoder's own walk so that it checks it.
func schemaKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		key := tag
		if prefix != "" {
			key = prefix + "." + tag
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[Duration]() {
			keys = append(keys, schemaKeys(ft, key)...)
			continue
		}
		keys = append(keys, key)
	}
	return keys
}

// documentedKeys returns the keys written in the example file, set or in a
// comment ("# key = "), as "section.key", and the uncommented ones apart.
func documentedKeys(t *testing.T, text string) (all, set map[string]bool) {
	t.Helper()
	section := regexp.MustCompile(`^\s*(?:#\s*)?\[\[?\s*([A-Za-z0-9_.]+)\s*\]\]?\s*(?:#.*)?$`)
	keyLine := regexp.MustCompile(`^\s*(#\s*)?([A-Za-z0-9_]+)\s*=`)
	all, set = map[string]bool{}, map[string]bool{}
	current := ""
	for line := range strings.Lines(text) {
		if m := section.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := keyLine.FindStringSubmatch(line); m != nil {
			key := m[2]
			if current != "" {
				key = current + "." + key
			}
			all[key] = true
			if m[1] == "" {
				set[key] = true
			}
		}
	}
	return all, set
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	keys := schemaKeys(reflect.TypeFor[Config](), "")

	t.Run("SchemaWalk", func(t *testing.T) {
		// Guards the walk itself: a broken walk would make the test below vacuous.
		for _, k := range []string{"radius.listen", "totp.activation_delay", "client.require_message_authenticator", "client.secret_file", "log.format"} {
			if !slices.Contains(keys, k) {
				t.Errorf("schema walk misses %q; got %v", k, keys)
			}
		}
		if slices.Contains(keys, "client.Prefix") || slices.Contains(keys, "Path") || slices.Contains(keys, "radius.reply_cache_ttl.Duration") {
			t.Errorf("schema walk includes a field that is not a key: %v", keys)
		}
	})

	t.Run("DecodesStrictly", func(t *testing.T) {
		c, err := Load(exampleFile)
		if err != nil {
			t.Fatalf("Load(%s): %v", exampleFile, err)
		}
		dir, _ := filepath.Abs("..")
		want := Default()
		want.Path = exampleFile
		want.Database.Path = filepath.Join(dir, "radotp.db")
		want.Database.KeyFile = filepath.Join(dir, "radotp.key")
		on := true
		want.Clients = []Client{{
			Name:                        "local-test",
			Address:                     "127.0.0.1/32",
			Secret:                      "radotp-example-secret-change-me",
			Mode:                        ModeAppend,
			RequireMessageAuthenticator: &on,
			ChallengePrompt:             DefaultChallengePrompt,
			ChallengeTTL:                Duration{DefaultChallengeTTL},
			Prefix:                      netip.MustParsePrefix("127.0.0.1/32"),
			SecretBytes:                 []byte("radotp-example-secret-change-me"),
		}}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("example file differs from the defaults it claims:\n got %+v\nwant %+v", c, want)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("example file has warnings: %q", w)
		}
	})

	t.Run("EveryKeyDocumented", func(t *testing.T) {
		all, set := documentedKeys(t, string(data))
		for _, k := range keys {
			if !all[k] {
				t.Errorf("key %q is not in %s (neither set nor as a comment %q)", k, exampleFile, "# "+k[strings.LastIndex(k, ".")+1:]+" = ")
			}
		}
		// Only sections the schema has, and no stale keys in comments.
		for k := range all {
			if !slices.Contains(keys, k) {
				t.Errorf("%s documents %q, which is not a key of the schema", exampleFile, k)
			}
		}
		// All keys outside [[client]] are set, so the example shows every default.
		for _, k := range keys {
			if !strings.HasPrefix(k, "client.") && !set[k] {
				t.Errorf("key %q is only in a comment; set it to its default", k)
			}
		}
	})
}
