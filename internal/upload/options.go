package upload

import (
	"errors"
	"fmt"
	"strings"

	"github.com/iys-sync/iys-sync/internal/consent"
)

// Channel is the kind of upload file: it decides how the address is read and
// which İYS types a line may register.
type Channel string

// The two channels of docs/upload-format.md.
const (
	Email Channel = "email"
	SMS   Channel = "sms"
)

// ParseChannel accepts exactly email or sms, as the --channel flag is written.
func ParseChannel(s string) (Channel, error) {
	switch c := Channel(s); c {
	case Email, SMS:
		return c, nil
	}
	return "", fmt.Errorf("unknown channel %q: want email or sms", s)
}

// ParseTypes reads a --type value: İYS type names separated by commas
// ("MESAJ", "ARAMA", "MESAJ,ARAMA"). Options.Validate decides whether the
// channel takes them.
func ParseTypes(s string) ([]consent.Type, error) {
	var types []consent.Type
	for _, part := range strings.Split(s, ",") {
		t, err := consent.ParseType(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("--type: %w", err)
		}
		types = append(types, t)
	}
	return types, nil
}

// Options says how to read one upload file.
type Options struct {
	Channel Channel
	// Types are the İYS types each line registers: nil (or empty) means the
	// channel's default, [EPOSTA] for email and [MESAJ] for SMS. Email files
	// take no other; SMS files take MESAJ, ARAMA or both.
	Types []consent.Type
	// DefaultSource is the source of lines whose platform is not in the table;
	// "" means consent.SourceWeb.
	DefaultSource consent.Source
	// Now is the moment the future and 3-business-day checks are made against;
	// the zero Date means consent.Now() when the Scanner is made.
	Now consent.Date
}

// Validate checks the options before any line is read.
func (o Options) Validate() error {
	switch o.Channel {
	case Email:
		if len(o.Types) > 0 {
			return errors.New("--type is refused for email files: their type is always EPOSTA")
		}
	case SMS:
		if err := checkSMSTypes(o.Types); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown channel %q: want email or sms", o.Channel)
	}
	return checkDefaultSource(o.DefaultSource)
}

func checkSMSTypes(types []consent.Type) error {
	seen := map[consent.Type]bool{}
	for _, t := range types {
		if t != consent.TypeMesaj && t != consent.TypeArama {
			return fmt.Errorf("--type %s is refused for SMS files: want MESAJ, ARAMA or MESAJ,ARAMA", t)
		}
		if seen[t] {
			return fmt.Errorf("--type names %s twice: want MESAJ, ARAMA or MESAJ,ARAMA", t)
		}
		seen[t] = true
	}
	return nil
}

// checkDefaultSource refuses HS_2015 and HS_KARAR too: each takes only some
// lines (one date; RET only), so neither can stand for any unknown platform.
func checkDefaultSource(s consent.Source) error {
	switch {
	case s == "":
		return nil
	case !s.IsBrandSource():
		return fmt.Errorf("default source %q is not one of İYS's brand sources (HS_WEB, HS_MOBIL, ...)", s)
	case s == consent.Source2015 || s == consent.SourceKarar:
		return fmt.Errorf("default source %s cannot stand for unknown platforms: it is valid for some consents only", s)
	}
	return nil
}

// ConsentTypes returns the İYS types each line registers, the channel's
// default when Types is empty.
func (o Options) ConsentTypes() []consent.Type {
	switch {
	case o.Channel == Email:
		return []consent.Type{consent.TypeEposta}
	case len(o.Types) > 0:
		return append([]consent.Type(nil), o.Types...)
	}
	return []consent.Type{consent.TypeMesaj}
}

// defaultSource is the source used for platforms not in the table.
func (o Options) defaultSource() consent.Source {
	if o.DefaultSource == "" {
		return consent.SourceWeb
	}
	return o.DefaultSource
}
