package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"passgate/citylink"
	"passgate/citystats"
)

// cmdCityDashboard asks every district hub named for its figures and
// prints them as a table, then one MISSING line per district that did
// not answer (exit 3 then). It needs no key and writes nothing: the
// figures hold no person, and each hub records who asked.
func cmdCityDashboard(ctx context.Context, e *env, args []string) int {
	fs := e.flagSet("city dashboard", "--districts D1,D2,... --city URLS --city-creds FILE [--city-ca FILE] [--timeout 10s] [--as NAME]")
	districts := fs.String("districts", "", "every district to ask, comma-separated (required)")
	urls := fs.String("city", "", "the city cluster's NATS URLs, comma-separated (required)")
	creds := fs.String("city-creds", "", "the city console user's nkey seed file, made by passgate city nats-user --console (required)")
	ca := fs.String("city-ca", "", "PEM CA the city cluster's TLS certificates are checked against; empty: the system's")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the districts, 1s to 2m")
	asker := fs.String("as", "", "the officer asking, as the districts' audit trails name them (default: this OS user)")
	if ok, code := e.parseNoArgs(fs, args); !ok {
		return code
	}
	if *districts == "" || *urls == "" || *creds == "" {
		return e.usageError("city dashboard", "--districts, --city and --city-creds are required")
	}
	cfg := citylink.Config{URLs: *urls, SeedFile: *creds, CAFile: *ca}
	if err := cfg.Check(); err != nil {
		return e.usageError("city dashboard", "%v", err)
	}
	if *timeout < time.Second || *timeout > 2*time.Minute {
		return e.usageError("city dashboard", "--timeout must be 1s to 2m")
	}
	if *asker == "" {
		*asker = strings.TrimPrefix(string(cliActor()), "cli:")
	}
	nc, err := citylink.Dial(cfg, "passgate city dashboard", citylink.ConsoleInboxPrefix)
	if err != nil {
		return e.fail(fmt.Errorf("city dashboard: %w", err))
	}
	defer nc.Close()
	res, err := citystats.AskDistricts(ctx, nc, splitList(*districts), *asker, *timeout)
	if err != nil {
		return e.fail(err)
	}
	if err := writeCityDashboard(e.stdout, res); err != nil {
		return e.fail(fmt.Errorf("city dashboard: %w", err))
	}
	if len(res.Missing) > 0 {
		fmt.Fprintf(e.stderr, "passgate: INCOMPLETE: %d districts did not answer\n", len(res.Missing))
		return exitIncomplete
	}
	return exitOK
}

// writeCityDashboard writes the figures as a table, list ages in
// seconds, "-" for what a hub does not know, then the missing districts.
func writeCityDashboard(w io.Writer, res *citystats.Result) error {
	if _, err := fmt.Fprintf(w, "asked %s\n", res.At.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DISTRICT\tLAST_5M\tLAST_HOUR\tTODAY\tALLOWED\tDENIED\tAPPLIANCES_SEEN\tAPPLIANCES\tOLDEST_LIST_S\tMEDIAN_LIST_S\tREVOCATIONS\tCITY_LAG\tHUB_TIME")
	opt := func(n *int64) string {
		if n == nil {
			return "-"
		}
		return strconv.FormatInt(*n, 10)
	}
	for _, a := range res.Answers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", a.District, a.Scans5m, a.ScansHour, a.ScansToday,
			a.Allows, a.Denies, a.AppliancesSeen, a.Appliances, opt(a.OldestListS), opt(a.MedianListS), a.Revocations, opt(a.CityLag),
			time.UnixMilli(a.AtMS).UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range res.Missing {
		if _, err := fmt.Fprintf(w, "MISSING %s: %s\n", m.District, m.Why); err != nil {
			return err
		}
	}
	return nil
}
