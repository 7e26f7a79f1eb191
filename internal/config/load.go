package config

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Flags are the setting flags registered on one command's flag set.
type Flags struct {
	fs     *flag.FlagSet
	file   *string
	values map[string]*string
}

// RegisterFlags adds --config and one flag per setting to fs. The password
// has no flag: a flag shows in the process list.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs, values: map[string]*string{}}
	f.file = fs.String("config", "", "YAML file with the same keys as the environment (IYS_BATCH_SIZE → batch_size)")
	for _, s := range settings {
		if s.env == "IYS_PASSWORD" {
			continue
		}
		f.values[s.flag()] = fs.String(s.flag(), "", s.usage+" (env "+s.env+")")
	}
	return f
}

// Load builds the Config after fs.Parse: defaults, then the YAML file, then the
// environment (through getenv), then the flags that were set.
func (f *Flags) Load(getenv func(string) string) (Config, error) {
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

func loadFile(cfg *Config, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("read config file %s: not YAML: %w", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := byKey(k)
		if !ok {
			return fmt.Errorf("config file %s: unknown key %q (known: %s)", path, k, strings.Join(knownKeys(), ", "))
		}
		v := ""
		if raw[k] != nil {
			v = fmt.Sprint(raw[k])
		}
		if err := s.set(cfg, v); err != nil {
			return &Error{Var: s.env, Origin: "config file key " + k, Msg: err.Error()}
		}
	}
	return nil
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
