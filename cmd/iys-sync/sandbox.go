package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/iys-sync/iys-sync/internal/sandbox"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runSandbox(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "sandbox")
	var o sandbox.Options
	var deny, brands listFlag
	fs.StringVar(&o.Addr, "addr", sandbox.DefaultAddr, "listen address")
	fs.StringVar(&o.Username, "username", sandbox.DefaultUsername, "the one API user it accepts")
	fs.StringVar(&o.Password, "password", sandbox.DefaultPassword, "that user's password (a test credential, not a secret)")
	fs.StringVar(&o.IntegratorCode, "integrator-code", "", "the partner's integrator code; empty accepts any")
	fs.Float64Var(&o.BulkRate, "bulk-rate", 0, "bulk requests per second accepted before answering 429 (0 = unlimited)")
	fs.IntVar(&o.LoginLimit, "login-limit", 0, "password logins per hour before answering H084 (0 = unlimited)")
	fs.DurationVar(&o.Latency, "latency", 0, "delay added to every answer")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "share of requests answered with 500 or 503 at random (0..1)")
	fs.DurationVar(&o.AsyncDelay, "async-delay", 0, "how long a bulk request stays enqueue before its result")
	fs.DurationVar(&o.TokenTTL, "token-ttl", sandbox.DefaultTokenTTL, "access token lifetime")
	fs.DurationVar(&o.FeedDelay, "feed-delay", 0, "hide changes younger than this from the changes feed (İYS: 1h)")
	fs.IntVar(&o.FeedPageCap, "page-cap", 0, "the changes feed answers at most this many changes a page, whatever the limit asked (0 = no cap)")
	fs.Int64Var(&o.Seed, "seed", 0, "random seed for faults (0 = time-based)")
	fs.Var(&brands, "brand", "IYSCODE:BRANDCODE[:NAME] of a brand the account holds, listed before its first consent (repeatable)")
	fs.Var(&deny, "deny-brand", "answer 403 for this brand code, as İYS does without partner permission (repeatable)")
	invalid := fs.String("invalid-recipient", "", "REGEX of recipients İYS holds invalid: a bulk request holding one is refused whole (400, errors with index)")
	fs.BoolVar(&o.RefusalWithoutIndex, "refusal-without-index", false, "leave the index and value out of a refused bulk request's errors")
	fs.DurationVar(&o.ClockSkew, "clock-skew", 0, "the sandbox's clock minus the host's (negative: behind)")
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("sandbox takes no operands, got %q", rest[0])
	}
	o.DenyBrands = deny
	if *invalid != "" {
		if o.InvalidRecipient, err = regexp.Compile(*invalid); err != nil {
			return usagef("--invalid-recipient: %v", err)
		}
	}
	for _, b := range brands {
		parts := strings.SplitN(b, ":", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
			return usagef("--brand %q: want IYSCODE:BRANDCODE or IYSCODE:BRANDCODE:NAME", b)
		}
		br := sandbox.Brand{IYSCode: parts[0], BrandCode: parts[1], Name: parts[1]}
		if len(parts) == 3 {
			br.Name = parts[2]
		}
		o.Brands = append(o.Brands, br)
	}
	return sandbox.ListenAndServe(ctx, o, func(addr string) {
		fmt.Fprintf(e.stdout, "listening on http://%s\n", addr)
	})
}
