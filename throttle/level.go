package throttle

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/waqhq/waq/numbers"
)

// Throughput levels: Meta raises a business phone number from 80 to 1,000
// messages per second by itself (no restart, no notice to the sender), and
// shows it in the phone number's Graph API field throughput {level}:
// STANDARD (80) or HIGH (1,000). The gate reads the level of every number
// it knows (the file's and those it has sent for) when it starts, when it
// first sees a number, on every probe of a pause, and every
// Config.LevelEvery after; the number is paced at the new rate from the
// next lease on.
//
// Precedence of a number's rate: the file's mps, when the file gives one
// (an explicit override: a number shared with other senders, say), then
// the level read from the Graph API, then numbers.DefaultMPS (80). A level
// that cannot be read, or that is neither STANDARD nor HIGH
// (NOT_APPLICABLE), leaves the rate as it was.

// HighMPS is the rate of a number whose throughput level is HIGH.
const HighMPS = 1000

// level is a number's throughput level as last read.
type level struct {
	name  string // STANDARD, HIGH, ... ("" before the first good read)
	mps   int    // the rate it gives; 0 when it gives none
	tried time.Time
}

// levelMPS is the rate a throughput level gives, 0 for one that gives
// none.
func levelMPS(name string) int {
	switch strings.ToUpper(name) {
	case "HIGH":
		return HighMPS
	case "STANDARD":
		return numbers.DefaultMPS
	}
	return 0
}

// paced is num with the rate it is paced at (see the precedence above).
func (g *Gate) paced(num numbers.Number) numbers.Number {
	if num.MPSSet {
		return num
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.pacedLocked(num)
}

// MPS is the rate num is paced at: the file's mps, its throughput level's,
// or the default (see the precedence above).
func (g *Gate) MPS(num numbers.Number) int { return g.paced(num).MPS }

// pacedLocked is paced with g.mu held.
func (g *Gate) pacedLocked(num numbers.Number) numbers.Number {
	if num.MPSSet {
		return num
	}
	if l, ok := g.levels[num.PhoneNumberID]; ok && l.mps > 0 {
		num.MPS = l.mps
	}
	return num
}

// rateSourceLocked says where num's paced rate comes from: "file", "level" or
// "default" (g.mu held), and the level last read.
func (g *Gate) rateSourceLocked(num numbers.Number) (source, name string) {
	l := g.levels[num.PhoneNumberID]
	switch {
	case num.MPSSet:
		return "file", l.name
	case l.mps > 0:
		return "level", l.name
	}
	return "default", l.name
}

// readLevels reads the throughput level of each known number that was not
// read for Config.LevelEvery (a new number at once), until ctx ends.
func (g *Gate) readLevels(ctx context.Context) {
	if g.graph == nil {
		return
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		for _, n := range g.known() {
			g.mu.RLock()
			l, ok := g.levels[n.PhoneNumberID]
			g.mu.RUnlock()
			if ok && g.now().Sub(l.tried) < g.cfg.LevelEvery {
				continue
			}
			if ctx.Err() != nil {
				return
			}
			g.readLevel(ctx, n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readLevel reads num's throughput level from the Graph API.
func (g *Gate) readLevel(ctx context.Context, num numbers.Number) {
	var out struct {
		Throughput struct {
			Level string `json:"level"`
		} `json:"throughput"`
		// The display number names the number in phone_number_quality_update.
		DisplayPhoneNumber string `json:"display_phone_number"`
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := g.graph.Get(rctx, url.PathEscape(num.PhoneNumberID), url.Values{"fields": {"throughput,display_phone_number"}}, num.Token(), &out)
	cancel()
	if err != nil {
		g.mu.Lock()
		l := g.levels[num.PhoneNumberID]
		l.tried = g.now()
		g.levels[num.PhoneNumberID] = l
		g.mu.Unlock()
		if ctx.Err() == nil {
			g.log.Debug("throughput level not read; the rate stays as it was", "phone_number_id", num.PhoneNumberID, "error", err)
		}
		return
	}
	g.noteLevel(num, out.Throughput.Level)
	g.noteDisplay(num.PhoneNumberID, out.DisplayPhoneNumber)
}

// noteDisplay keeps a number's display number (digits only).
func (g *Gate) noteDisplay(pn, display string) {
	var b strings.Builder
	for i := 0; i < len(display) && i < 64; i++ {
		if display[i] >= '0' && display[i] <= '9' {
			b.WriteByte(display[i])
		}
	}
	if b.Len() == 0 {
		return
	}
	g.mu.Lock()
	g.displays[pn] = b.String()
	g.mu.Unlock()
}

// noteLevel keeps a level read for num (by readLevel or a probe).
func (g *Gate) noteLevel(num numbers.Number, name string) {
	g.mu.Lock()
	old := g.levels[num.PhoneNumberID]
	l := level{name: strings.ToUpper(name), mps: levelMPS(name), tried: g.now()}
	if l.name == "" {
		l.name, l.mps = old.name, old.mps
	}
	g.levels[num.PhoneNumberID] = l
	g.mu.Unlock()
	if l.name != old.name && l.name != "" {
		g.log.Info("throughput level", "phone_number_id", num.PhoneNumberID, "level", l.name, "was", old.name,
			"mps", g.paced(num).MPS, "mps_from_file", num.MPSSet)
		if !num.MPSSet && l.mps != old.mps {
			// Slots leased at the old rate are given up.
			g.leases.drop(num.PhoneNumberID)
		}
	}
}

// Maintenance is told of a 131057 for num: the number is in maintenance,
// which Meta documents for a throughput upgrade ("can take up to 1 minute;
// during this time the number will not be usable"). Its level is read again
// Config.LevelAfterMaintenance later rather than at the regular read, so
// that an upgraded number is paced at 1,000 msg/s as soon as it sends again.
func (g *Gate) Maintenance(num numbers.Number) {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.levels[num.PhoneNumberID]
	// The level loop reads a number once tried is LevelEvery old.
	soon := g.now().Add(g.cfg.LevelAfterMaintenance - g.cfg.LevelEvery)
	if l.tried.After(soon) {
		l.tried = soon
		g.levels[num.PhoneNumberID] = l
	}
}
