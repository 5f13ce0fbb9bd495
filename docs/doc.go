// Package docs holds waq's reference (the Markdown files beside this one)
// and the tests that keep it true to the code: every WAQ_* setting the
// code reads is documented with its default, every metric and span
// attribute is named, the policy table is the code's, and every relative
// link resolves in a clone.
package docs
