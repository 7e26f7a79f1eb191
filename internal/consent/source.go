package consent

import (
	"errors"
	"strings"
)

// Source is where a consent was given, as İYS names it: HS_* for the brand's
// own channels, IYS_* for changes citizens make through İYS.
type Source string

// The brand sources İYS accepts [doc/seen].
const (
	SourceFizikselOrtam Source = "HS_FIZIKSEL_ORTAM"
	SourceIslakImza     Source = "HS_ISLAK_IMZA"
	SourceWeb           Source = "HS_WEB"
	SourceCagriMerkezi  Source = "HS_CAGRI_MERKEZI"
	SourceSosyalMedya   Source = "HS_SOSYAL_MEDYA"
	SourceEposta        Source = "HS_EPOSTA"
	SourceMesaj         Source = "HS_MESAJ"
	SourceMobil         Source = "HS_MOBIL"
	SourceEortam        Source = "HS_EORTAM"
	SourceEtkinlik      Source = "HS_ETKINLIK"
	Source2015          Source = "HS_2015" // consents from before 1 May 2015, dated exactly 2015-05-01 00:00:00
	SourceATM           Source = "HS_ATM"
	SourceKarar         Source = "HS_KARAR" // a refusal the brand decided itself: RET only
)

// BrandSources lists the 13 brand sources.
var BrandSources = []Source{SourceFizikselOrtam, SourceIslakImza, SourceWeb, SourceCagriMerkezi,
	SourceSosyalMedya, SourceEposta, SourceMesaj, SourceMobil, SourceEortam, SourceEtkinlik,
	Source2015, SourceATM, SourceKarar}

// Citizen-side sources seen in the changes feed [seen]; unknown IYS_* ones are accepted too.
const (
	SourceIYSWeb    Source = "IYS_WEB"
	SourceIYSMobil  Source = "IYS_MOBIL"
	SourceIYSCM     Source = "IYS_CM"
	SourceIYS3338   Source = "IYS_3338"
	SourceIYSLink   Source = "IYS_KISA_LINK"
	SourceIYSKisaSM Source = "IYS_KISAMESAJ"
)

// IsBrandSource reports whether s is one of the 13 brand sources.
func (s Source) IsBrandSource() bool {
	for _, b := range BrandSources {
		if s == b {
			return true
		}
	}
	return false
}

// IsCitizen reports whether s is one of İYS's own channels (IYS_*).
func (s Source) IsCitizen() bool { return strings.HasPrefix(string(s), "IYS_") }

// platformSources maps the platform names brands write in upload files to
// İYS sources, lower-case.
var platformSources = map[string]Source{
	"email": SourceEposta, "e-mail": SourceEposta, "eposta": SourceEposta,
	"sms": SourceMesaj, "mesaj": SourceMesaj,
	"mobileapp": SourceMobil, "mobile": SourceMobil, "app": SourceMobil, "mobil": SourceMobil,
	"web": SourceWeb, "website": SourceWeb, "mobile/web": SourceWeb, "online": SourceWeb,
	"form": SourceFizikselOrtam, "store": SourceFizikselOrtam, "branch": SourceFizikselOrtam, "fiziksel": SourceFizikselOrtam,
	"callcenter": SourceCagriMerkezi, "call": SourceCagriMerkezi, "cagrimerkezi": SourceCagriMerkezi,
	"social": SourceSosyalMedya, "socialmedia": SourceSosyalMedya,
	"wetsignature": SourceIslakImza, "islakimza": SourceIslakImza,
	"event": SourceEtkinlik, "etkinlik": SourceEtkinlik,
	"atm": SourceATM,
}

// Errors of PlatformSource.
var (
	ErrEmptyPlatform   = errors.New("must not be empty: say where the consent was given (web, sms, form...)")
	ErrCitizenPlatform = errors.New("must not be an IYS_ source: a brand may not claim a consent given through İYS")
)

// PlatformSource maps an upload file's platform to an İYS source. known is
// false when the platform is not in the table and def was used.
func PlatformSource(platform string, def Source) (src Source, known bool, err error) {
	if platform == "" {
		return "", false, ErrEmptyPlatform
	}
	upper := strings.ToUpper(platform)
	if strings.HasPrefix(upper, "IYS_") {
		return "", false, ErrCitizenPlatform
	}
	if s := Source(upper); s.IsBrandSource() {
		return s, true, nil
	}
	if s, ok := platformSources[strings.ToLower(platform)]; ok {
		return s, true, nil
	}
	return def, false, nil
}
