package verifier

import "testing"

func TestSplitCode(t *testing.T) {
	for _, tc := range []struct {
		name, in, sep string
		digits        int
		pw, code      string
		ok            bool
	}{
		{"Trailing6", "hunter2123456", "", 6, "hunter2", "123456", true},
		{"Trailing8", "hunter212345678", "", 8, "hunter2", "12345678", true},
		{"OnlyCode", "123456", "", 6, "", "123456", true},
		{"TooShort", "12345", "", 6, "", "", false},
		{"Separator", "hunter2,123456", ",", 6, "hunter2", "123456", true},
		{"SeparatorInPassword", "a,b,c,123456", ",", 6, "a,b,c", "123456", true},
		{"MultiByteSeparator", "pw::123456", "::", 6, "pw", "123456", true},
		{"SeparatorMissing", "hunter2123456", ",", 6, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw, code, ok := splitCode([]byte(tc.in), tc.sep, tc.digits)
			if ok != tc.ok || string(pw) != tc.pw || string(code) != tc.code {
				t.Fatalf("splitCode(%q,%q,%d) = %q,%q,%v", tc.in, tc.sep, tc.digits, pw, code, ok)
			}
		})
	}
}
