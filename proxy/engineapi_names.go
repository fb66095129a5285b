package proxy

import "github.com/clocker/clocker/engineapi"

// Short names for the filter arguments every list route parses.
type filterArgs = engineapi.Filters

func parseFilterArgs(s string) (filterArgs, error) { return engineapi.ParseFilters(s) }

// objectHead is what the proxy reads of an engine's volume or network.
type objectHead = engineapi.ObjectHead
