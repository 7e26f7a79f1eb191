package pgtemp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// owner is the OS user the cluster runs as: nil when it is the current user.
// PostgreSQL refuses to run as root, so root hands the cluster to "postgres".
type owner struct {
	cred *syscall.Credential
}

func currentOwner() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return owner{}, errors.New("running as root, and PostgreSQL refuses to run as root, but there is no \"postgres\" OS user to run it as: create one (useradd --system postgres) or run as another user")
		}
		return owner{}, fmt.Errorf("look up the postgres OS user: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return owner{}, fmt.Errorf("the postgres OS user has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return owner{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
}

// sysProcAttr runs a child as the owner, in its own process group (a Ctrl-C
// meant for us must not reach the server), and stops it with SIGQUIT
// (immediate shutdown) if we die without stopping it.
func (o owner) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: o.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}

// give hands paths we created to the owner.
func (o owner) give(paths ...string) error {
	if o.cred == nil {
		return nil
	}
	for _, p := range paths {
		if err := os.Chown(p, int(o.cred.Uid), int(o.cred.Gid)); err != nil {
			return fmt.Errorf("hand %s to the postgres OS user: %w", p, err)
		}
	}
	return nil
}

// checkReachable fails early, with a clear message, when the owner cannot
// walk down to dir (say, a TMPDIR under /root): initdb's own message would
// only say "permission denied".
func (o owner) checkReachable(dir string) error {
	if o.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("check %s: %w", p, err)
		}
		if !o.canSearch(fi) {
			return fmt.Errorf("the postgres OS user cannot reach %s, because it may not enter %s: set TMPDIR (or Options.Dir) to a directory it can reach, such as /tmp", dir, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// parentDir picks where to make the cluster's directory: dir when given;
// else os.TempDir(), unless the owner cannot reach it (root with TMPDIR under
// /root), then /tmp.
func (o owner) parentDir(dir string) string {
	if dir != "" || o.cred == nil {
		return dir
	}
	if o.checkReachable(filepath.Join(os.TempDir(), "x")) != nil {
		return "/tmp"
	}
	return ""
}

func (o owner) canSearch(fi fs.FileInfo) bool {
	mode := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true // cannot tell; let initdb say
	}
	switch {
	case st.Uid == o.cred.Uid:
		return mode&0o100 != 0
	case st.Gid == o.cred.Gid:
		return mode&0o010 != 0
	default:
		return mode&0o001 != 0
	}
}
