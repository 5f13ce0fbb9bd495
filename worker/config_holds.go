package worker

import (
	"fmt"
	"time"

	"github.com/waqhq/waq/throttle"
)

// holdDefaults fills the settings of template and quality holds.
func (c *Config) holdDefaults() {
	if c.TemplateHoldMax == 0 {
		c.TemplateHoldMax = 24 * time.Hour
	}
	if c.HoldRecheck == 0 {
		c.HoldRecheck = time.Minute
	}
	if c.TemplateRetry == 0 {
		c.TemplateRetry = 15 * time.Minute
	}
	if c.LowQualityMarketing == "" {
		c.LowQualityMarketing = throttle.LowQualityHold
	}
}

// validateHolds checks the settings of template and quality holds.
func (c *Config) validateHolds() error {
	switch c.LowQualityMarketing {
	case throttle.LowQualityHold, throttle.LowQualitySlow, throttle.LowQualitySend:
	default:
		return &ConfigError{Setting: "WAQ_LOW_QUALITY_MARKETING", Problem: fmt.Sprintf("%q: want hold, slow or send", c.LowQualityMarketing)}
	}
	if c.HoldRecheck > c.TemplateHoldMax {
		return &ConfigError{Setting: "WAQ_HOLD_RECHECK", Problem: fmt.Sprintf("%s is longer than WAQ_TEMPLATE_HOLD_MAX (%s)", c.HoldRecheck, c.TemplateHoldMax)}
	}
	return nil
}
