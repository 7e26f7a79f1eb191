package config

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/iys-sync/iys-sync/internal/redact"
)

// Flags are the setting flags registered on one command's flag set.
type Flags struct {
	fs    *flag.FlagSet
	file  *string
	taken map[string]bool // the settings' flags the command takes, --config too
}

// RegisterFlags adds to fs --config and a flag for each setting of the
// groups the command reads. A secret setting's flag is refused
// (RefusedFlag): a flag shows in the process list to every user of the
// machine. Every secret's flag is registered all the same, also on a
// command that does not read it, so that the value given after it is taken
// in and dropped, never echoed as an operand, and the refusal names the
// variable to set.
func RegisterFlags(fs *flag.FlagSet, groups ...Group) *Flags {
	f := &Flags{fs: fs, taken: map[string]bool{"config": true}}
	f.file = fs.String("config", "", "YAML file with the same keys as the environment (IYS_BATCH_SIZE → batch_size); env IYS_CONFIG")
	for _, s := range settings {
		reads := slices.Contains(groups, s.group)
		if reads {
			f.taken[s.flag()] = true
		}
		switch {
		case s.secret:
			fs.Var(&refusedFlag{s: s}, s.flag(), "refused, a secret: set "+s.env+" in the environment (or "+s.key()+" in --config): "+s.usage)
		case reads:
			fs.String(s.flag(), "", s.usage+"; env "+s.env+s.shownDefault())
		}
	}
	return f
}

// shownDefault is ", default X" for the help, or "" when the default is empty.
func (s setting) shownDefault() string {
	if s.get == nil {
		return ""
	}
	if d := s.get(Default()); d != "" {
		return ", default " + d
	}
	return ""
}

// Takes reports whether the flag name is a setting the command takes
// (--config included): false for the command's own flags, and for the
// refused flags of secrets it does not read, which its help leaves out.
func (f *Flags) Takes(name string) bool { return f.taken[name] }

// Refused reports whether the flag name is a secret setting's, refused.
func (f *Flags) Refused(name string) bool {
	fl := f.fs.Lookup(name)
	if fl == nil {
		return false
	}
	_, ok := fl.Value.(*refusedFlag)
	return ok
}

// refusedFlag is a secret setting's flag: it keeps nothing of its value, and
// its Set never fails, since the flag package would quote the value in its
// error.
type refusedFlag struct {
	s   setting
	set bool
}

func (r *refusedFlag) String() string { return "" }
func (r *refusedFlag) Set(string) error {
	r.set = true
	return nil
}

// RefusedFlag reports the first secret setting given as a flag on fs after
// it was parsed: a usage error naming the variable to use instead. The
// value is not in it.
func RefusedFlag(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if r, ok := fl.Value.(*refusedFlag); ok && r.set && err == nil {
			err = &Error{Var: r.s.env, Origin: "flag --" + fl.Name, Usage: true,
				Msg: "a secret is refused as a flag: flags show in the process list to every user of the machine; " +
					"set " + r.s.env + " in the environment (from a Kubernetes Secret) or " + r.s.key() + " in the --config file"}
		}
	})
	return err
}

// Load builds the Config after fs.Parse: defaults, then the YAML file, then the
// environment (through getenv), then the flags that were set.
func (f *Flags) Load(getenv func(string) string) (Config, error) {
	if err := RefusedFlag(f.fs); err != nil {
		return Config{}, err
	}
	cfg := Default()
	path := *f.file
	if path == "" {
		path = getenv("IYS_CONFIG")
	}
	if path != "" {
		if err := loadFile(&cfg, path); err != nil {
			return Config{}, err
		}
	}
	for _, s := range settings {
		if v, ok := lookup(getenv, s.env); ok {
			s.register(v)
			if err := s.set(&cfg, v); err != nil {
				return Config{}, &Error{Var: s.env, Msg: err.Error()}
			}
		}
	}
	var err error
	f.fs.Visit(func(fl *flag.Flag) {
		for _, s := range settings {
			if err == nil && s.flag() == fl.Name {
				if e := s.set(&cfg, fl.Value.String()); e != nil {
					err = &Error{Var: s.env, Origin: "flag --" + fl.Name, Msg: e.Error()}
				}
			}
		}
	})
	return cfg, err
}

// lookup treats an empty variable as unset, so that a blank line in an env
// file keeps the default.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// loadFile reads the YAML file: a mapping of keys to scalars, each taken as
// the string written (0123 stays "0123", yes stays "yes"; YAML 1.1 would read
// them as 83 and true); an empty or null value is empty. Its errors name
// lines and keys, never a value: the file may hold secrets.
func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("read config file %s: not valid YAML%s: check its quoting and indentation (the parser's message is not shown: it may quote a secret)",
			path, yamlErrorLine(err))
	}
	if len(doc.Content) == 0 {
		return nil // empty
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config file %s: line %d: want a mapping of keys to values (batch_size: 1000)", path, root.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("config file %s: line %d: a key must be a plain name", path, kn.Line)
		}
		k := kn.Value
		s, ok := byKey(k)
		if !ok {
			return fmt.Errorf("config file %s: line %d: unknown key %q (known: %s)", path, kn.Line, k, strings.Join(knownKeys(), ", "))
		}
		if first, dup := seen[k]; dup {
			return fmt.Errorf("config file %s: line %d: key %s is given twice (first at line %d)", path, kn.Line, k, first)
		}
		seen[k] = kn.Line
		if vn.Kind != yaml.ScalarNode {
			return &Error{Var: s.env, Origin: fmt.Sprintf("config file key %s, line %d", k, vn.Line),
				Msg: "must be a single value (a string, quoted if need be), not a list, a mapping or an alias"}
		}
		v := vn.Value
		if vn.Tag == "!!null" && vn.Style == 0 {
			v = "" // key:, key: ~, key: null
		}
		s.register(v)
		if err := s.set(cfg, v); err != nil {
			return &Error{Var: s.env, Origin: "config file key " + k, Msg: err.Error()}
		}
	}
	return nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlErrorLine is " (line N)" from a parser error, or "".
func yamlErrorLine(err error) string {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return " (line " + m[1] + ")"
	}
	return ""
}

// register adds a secret setting's value to the process's scrubber as soon
// as it is read, valid or not, so that no message printed or logged later
// can show it.
func (s setting) register(v string) {
	switch {
	case !s.secret || v == "":
	case s.dsn:
		redact.RegisterDSN(v)
	case s.env == "IYS_INTAKE_TOKENS":
		// The hashes (not the names, which the logs show), or a whole entry
		// that is not name:hash: a token pasted in plain.
		for _, f := range strings.Fields(v) {
			if parts := strings.Split(f, ":"); len(parts) >= 2 {
				redact.Register(parts[1])
			} else {
				redact.Register(f)
			}
		}
	default:
		redact.Register(v)
	}
}

func byKey(k string) (setting, bool) {
	for _, s := range settings {
		if s.key() == k {
			return s, true
		}
	}
	return setting{}, false
}

func knownKeys() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.key()
	}
	return out
}
