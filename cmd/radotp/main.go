// Command radotp is a RADIUS server that adds TOTP second factors to VPN and
// SSH gateway logins, and the admin CLI for its database.
//
//	radotp serve        [--config FILE]
//	radotp check-config [--config FILE]
//	radotp user add NAME [--email ADDR] [--password-stdin] [--policy default|required|optional|disabled] [--invite]
//	radotp user passwd NAME            (new password on stdin)
//	radotp user set NAME [--policy ...] [--email ADDR]
//	radotp user list [--json] | show NAME [--json] | delete NAME | unlock NAME
//	radotp user import FILE|- [--format csv|json] [--dry-run]
//	radotp token add NAME [--secret BASE32] [--activate-now]
//	radotp token reset NAME
//	radotp enroll link NAME [--ttl DURATION] [--email]
//	radotp audit [--user NAME] [--since DURATION] [--json]
//	radotp backup FILE
//
// Every command takes --config (default $RADOTP_CONFIG, then
// /etc/radotp/radotp.toml). Flags may stand before or after the positional
// arguments. Exit status 0 on success; errors go to stderr as one sentence.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
