package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// freeradius is the FreeRADIUS the shared recipe started.
type freeradius struct {
	pid int
}

// setupFreeRADIUS installs and configures FreeRADIUS with the shared recipe,
// puts the benchmark's users (users.freeradius, users.sql) in its users file
// and SQLite database, and starts it. run.sh stop stops it at the end.
func (b *bench) setupFreeRADIUS(users string) (*freeradius, error) {
	runSh := filepath.Join(b.o.shared, "freeradius", "run.sh")
	if _, err := os.Stat(runSh); err != nil {
		return nil, err
	}
	work := filepath.Join(b.o.work, "freeradius")
	env := []string{"WORK=" + work}
	run := func(what string) error { return b.cmd(filepath.Dir(runSh), env, runSh, what) }

	b.say("FreeRADIUS: install and configure (%s)", runSh)
	if err := run("install"); err != nil {
		return nil, err
	}
	if err := run("stop"); err != nil { // one left by an interrupted run
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(frRaddb, "sites-enabled", "totp2fa")); err != nil {
		if err := run("configure"); err != nil {
			return nil, err
		}
	}

	// The users file: replaced when it differs.
	usersFile := filepath.Join(frRaddb, "mods-config", "files", "totp2fa_users")
	want, err := os.ReadFile(users + ".freeradius")
	if err != nil {
		return nil, err
	}
	if have, _ := os.ReadFile(usersFile); !bytes.Equal(have, want) {
		b.say("FreeRADIUS: installing the users file (%d MB)", len(want)>>20)
		if err := b.cmd("", nil, "install", "-m", "0640", "-o", "freerad", "-g", "freerad", users+".freeradius", usersFile); err != nil {
			return nil, err
		}
	}
	// The radcheck rows: reloaded unless the database holds exactly ours.
	n := b.o.users
	if !b.sqlLoaded(n) {
		b.say("FreeRADIUS: loading %d users into %s", n, frDB)
		c := exec.CommandContext(b.ctx, "sqlite3", frDB)
		f, err := os.Open(users + ".sql")
		if err != nil {
			return nil, err
		}
		c.Stdin = f
		out, err := c.CombinedOutput()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlite3 %s < %s.sql: %v\n%s", frDB, users, err, out)
		}
		if !b.sqlLoaded(n) {
			return nil, fmt.Errorf("%s: the users did not load", frDB)
		}
	}

	b.say("FreeRADIUS: starting (users file :%d, SQLite :%d)", frFilesPort, frSQLPort)
	if err := run("start"); err != nil {
		return nil, err
	}
	b.atExit(func() {
		if err := run("stop"); err != nil {
			b.say("FreeRADIUS: stop: %v", err)
		}
	})
	pidText, err := os.ReadFile(filepath.Join(work, "freeradius.pid"))
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		return nil, fmt.Errorf("freeradius.pid: %v", err)
	}
	// A users file of a million entries takes seconds to load.
	for i := 0; !listening(frSQLPort, pid); i++ {
		if i == 600 {
			return nil, fmt.Errorf("FreeRADIUS (pid %d) does not listen on %d", pid, frSQLPort)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &freeradius{pid: pid}, nil
}

// sqlLoaded reports whether FreeRADIUS's radcheck table holds the n users
// of the benchmark (two rows each, the last user's name as expected).
func (b *bench) sqlLoaded(n int) bool {
	width := max(4, len(strconv.Itoa(n-1)))
	last := fmt.Sprintf("u%0*d", width, n-1)
	out, err := exec.Command("sqlite3", frDB,
		fmt.Sprintf("SELECT COUNT(*), (SELECT COUNT(*) FROM radcheck WHERE username = '%s') FROM radcheck", last)).Output()
	return err == nil && strings.TrimSpace(string(out)) == fmt.Sprintf("%d|2", 2*n)
}
