package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// The TOML library does the syntax; this file maps the parsed document onto
// the Config structs itself rather than letting toml.Decode do it, so that
//   - key names match exactly (toml.Decode also accepts "LISTEN" for "listen"),
//   - every unknown key and every value of the wrong type is reported, not
//     only the first one,
//   - messages name the key and the value the way validation messages do.

// problems collects what is wrong with a configuration.
type problems struct {
	name string          // file name for messages
	list []problem       // in the order found
	seen map[string]bool // scope + key pairs already reported
}

type problem struct {
	order []int // position of the key in the schema, for sorting
	msg   string
}

// scope says which element of an array of tables a key belongs to; the zero
// scope is the rest of the file.
type scope struct {
	label string // `client "vpn"` or `client #2`, for messages
	array string // "client"
	index int    // counting from 0
}

// elemScope is the scope of element i (counting from 0) of the array of
// tables key.
func elemScope(key string, i int, name string) scope {
	return scope{label: elemLabel(key, i, name), array: key, index: i}
}

// prefix is the start of every message: "config: radotp.toml: ".
func (p *problems) prefix() string {
	if p.name == "" {
		return "config: "
	}
	return "config: " + p.name + ": "
}

// add records msg about key (relative to where). Only the first problem of a
// key is kept: a value that could not be decoded is not complained about
// again by validation.
func (p *problems) add(where scope, key, msg string) {
	id := fmt.Sprintf("%s#%d.%s", where.array, where.index, key)
	if p.seen[id] {
		return
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[id] = true
	if where.label != "" {
		msg = where.label + ": " + msg
	}
	p.list = append(p.list, problem{order: schemaOrder(where, key), msg: p.prefix() + msg})
}

// bad records "key = value: problem".
func (p *problems) bad(where scope, key string, val any, format string, args ...any) {
	if _, ok := val.(redacted); ok {
		p.add(where, key, key+": "+fmt.Sprintf(format, args...))
		return
	}
	p.add(where, key, key+" = "+show(val)+": "+fmt.Sprintf(format, args...))
}

// err returns all problems, in the order of the schema (which is the order
// of the example file), joined; or nil.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b problem) int { return slices.Compare(a.order, b.order) })
	errs := make([]error, len(p.list))
	for i, pr := range p.list {
		errs[i] = errors.New(pr.msg)
	}
	return errors.Join(errs...)
}

// schemaOrder returns the position of key in the Config schema, which is
// the order of the example file: field indexes along the path, arrays of
// tables after the other fields of their table (as they stand at the end of
// a file), the element index after an array of tables, unknown keys last.
func schemaOrder(where scope, key string) []int {
	path := strings.Split(key, ".")
	if where.array != "" {
		path = append([]string{where.array}, path...)
	}
	var order []int
	t := reflect.TypeFor[Config]()
	for depth, seg := range path {
		if t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t == durationType {
			break
		}
		names, index := tomlFields(t)
		i := slices.Index(names, seg)
		if i < 0 {
			order = append(order, 2*len(names))
			break
		}
		f := t.Field(index[seg])
		if f.Type.Kind() == reflect.Slice {
			i += len(names)
		}
		order = append(order, i)
		if depth == 0 && where.array != "" {
			order = append(order, where.index)
		}
		t = f.Type
	}
	return order
}

// redacted stands for a value that must not be shown (a secret).
type redacted struct{}

// sensitiveKeys are full keys whose values never appear in messages.
var sensitiveKeys = map[string]bool{"client.secret": true}

// maxShown is how many bytes of a string value messages show.
const maxShown = 64

// show formats a value for a message, the way it would be written in TOML.
func show(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > maxShown {
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(x[cut]) {
				cut--
			}
			return strconv.Quote(x[:cut]) + "..."
		}
		return strconv.Quote(x)
	case Duration:
		return strconv.Quote(fmtDuration(x.Duration))
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case map[string]any:
		return "{...}"
	case []any, []map[string]any:
		return "[...]"
	case time.Time:
		return "(a date/time)"
	default:
		return fmt.Sprint(x)
	}
}

// fmtDuration writes d without zero tails: "5m" rather than "5m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// durationHint says how to write a duration.
const durationHint = `write a number and a unit (ms, s, m, h) such as "30s", "15m" or "24h"`

// decode parses data and stores its values into c over the defaults already
// there. It returns an error only for a syntax error; unknown keys and values
// of the wrong type go to p.
func decode(data []byte, c *Config, p *problems) error {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		// The toml.ParseError is not wrapped: its ErrorWithPosition quotes
		// the lines around the error, which may hold a client secret.
		var pe toml.ParseError
		if !errors.As(err, &pe) {
			return errors.New(p.prefix() + err.Error())
		}
		msg := pe.Message
		if slices.Contains(strings.Split(pe.LastKey, "."), "secret") && strings.ContainsAny(msg, `"'`) {
			// The lexer quotes what it found, here part of a secret.
			msg = `the value of secret is not a valid TOML string (not shown); write it in quotes: secret = "..."`
		}
		return errors.New(p.prefix() + position(data, pe) + ": " + oneLine(msg))
	}
	d := decoder{p: p}
	d.table(raw, reflect.ValueOf(c).Elem(), "", scope{}, "")
	return nil
}

// oneLine escapes control characters (the library's messages may quote a
// newline it found), so that each problem stays on one line.
func oneLine(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// position returns "line 3, column 6" for a syntax error. It counts from the
// byte offset of the error, as the library's line and column are sometimes
// off by one line (an error at a newline) or several columns.
func position(data []byte, pe toml.ParseError) string {
	// The parser skips a byte order mark; its offsets start after it.
	for _, bom := range []string{"\xff\xfe", "\xfe\xff", "\xef\xbb\xbf"} {
		if s, ok := bytes.CutPrefix(data, []byte(bom)); ok {
			data = s
			break
		}
	}
	start := pe.Position.Start
	if start < 0 || start > len(data) {
		return fmt.Sprintf("line %d", pe.Position.Line)
	}
	before := data[:start]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

type decoder struct{ p *problems }

var (
	durationType = reflect.TypeFor[Duration]()
	boolPtrType  = reflect.TypeFor[*bool]()
)

// tomlFields returns the TOML key names of struct type t, in field order,
// and the field index of each.
func tomlFields(t reflect.Type) ([]string, map[string]int) {
	var names []string
	index := make(map[string]int)
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		names = append(names, tag)
		index[tag] = i
	}
	return names, index
}

// table decodes the TOML table m into the struct v. full is the dotted key of
// the table ("" at the top), where names the client it belongs to (""
// outside [[client]]) and rel is the table's key relative to where.
func (d *decoder) table(m map[string]any, v reflect.Value, full string, where scope, rel string) {
	names, index := tomlFields(v.Type())
	for _, k := range names { // schema order: messages follow the file's layout
		if raw, ok := m[k]; ok {
			d.value(raw, v.Field(index[k]), join(full, k), where, join(rel, k))
		}
	}
	var unknown []string
	for k := range m {
		if _, ok := index[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		key := join(full, k)
		msg := fmt.Sprintf("unknown key %s", strconv.Quote(key))
		if s := suggest(k, names); s != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", strconv.Quote(join(full, s)))
		}
		d.p.add(where, join(rel, k), msg)
	}
}

// value decodes one TOML value into v.
func (d *decoder) value(raw any, v reflect.Value, full string, where scope, rel string) {
	shown := raw
	if sensitiveKeys[full] {
		shown = redacted{}
	}
	t := v.Type()
	switch {
	case t == durationType:
		s, ok := raw.(string)
		if !ok {
			d.p.bad(where, rel, shown, "must be a duration string: %s", durationHint)
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			d.p.bad(where, rel, shown, "not a duration: %s", durationHint)
			return
		}
		v.Set(reflect.ValueOf(Duration{dur}))
	case t == boolPtrType:
		b, ok := raw.(bool)
		if !ok {
			d.p.bad(where, rel, shown, "must be true or false")
			return
		}
		v.Set(reflect.ValueOf(&b))
	case t.Kind() == reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.p.bad(where, rel, shown, "must be a string (in quotes)")
			return
		}
		v.SetString(s)
	case t.Kind() == reflect.Int:
		n, ok := raw.(int64)
		if !ok {
			d.p.bad(where, rel, shown, "must be an integer")
			return
		}
		if v.OverflowInt(n) {
			d.p.bad(where, rel, shown, "too large")
			return
		}
		v.SetInt(n)
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.p.bad(where, rel, shown, "must be a table ([%s])", full)
			return
		}
		d.table(m, v, full, where, rel)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		elems, ok := raw.([]any)
		if !ok {
			d.p.bad(where, rel, shown, `must be an array of strings, such as ["a", "b"]`)
			return
		}
		out := make([]string, 0, len(elems))
		for _, e := range elems {
			s, ok := e.(string)
			if !ok {
				d.p.bad(where, rel, shown, `must be an array of strings, such as ["a", "b"]`)
				return
			}
			out = append(out, s)
		}
		v.Set(reflect.ValueOf(out))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		d.tables(raw, v, full, where, rel)
	default:
		// Only reached if a field of a type handled nowhere above is added
		// to the schema; the example-file test decodes every key.
		panic(fmt.Sprintf("config: no decoder for %s (%s)", full, t))
	}
}

// tables decodes an array of tables ([[client]]) into the slice v.
func (d *decoder) tables(raw any, v reflect.Value, full string, where scope, rel string) {
	var elems []map[string]any
	switch x := raw.(type) {
	case []map[string]any:
		elems = x
	case []any: // client = [{...}, {...}]
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				d.p.bad(where, rel, raw, "must be an array of tables ([[%s]])", full)
				return
			}
			elems = append(elems, m)
		}
	default:
		d.p.bad(where, rel, raw, "must be an array of tables ([[%s]])", full)
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(elems))
	for i, m := range elems {
		e := reflect.New(v.Type().Elem())
		if def, ok := e.Interface().(interface{ setDefaults() }); ok {
			def.setDefaults()
		}
		name, _ := m["name"].(string)
		d.table(m, e.Elem(), full, elemScope(full, i, name), "")
		out = reflect.Append(out, e.Elem())
	}
	v.Set(out)
}

// elemLabel names element i of the array of tables key: `client "vpn"`, or
// `client #2` (counting from 1, in file order) if it has no name.
func elemLabel(key string, i int, name string) string {
	if name == "" {
		return fmt.Sprintf("%s #%d", key, i+1)
	}
	return key + " " + show(name)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

// suggest returns the name in names closest to the unknown key k, or "".
func suggest(k string, names []string) string {
	best, bestDist := "", 3 // at most two edits away
	for _, n := range names {
		if strings.EqualFold(n, k) {
			return n
		}
		if dist := editDistance(strings.ToLower(k), n); dist < bestDist {
			best, bestDist = n, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b)) // not worth computing for a suggestion
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
