// Command radotp is a RADIUS server that adds TOTP second factors to VPN and
// SSH gateway logins, and the admin CLI for its database.
//
//	radotp serve        [--config FILE]
//	radotp check-config [--config FILE]
//	radotp user add NAME [--email ADDR] [--password-stdin] [--policy default|required|optional|disabled]
//	radotp user passwd NAME            (new password on stdin)
//	radotp user list [--json] | show NAME [--json] | delete NAME | unlock NAME
//	radotp token add NAME [--secret BASE32] [--activate-now]
//	radotp token reset NAME
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
