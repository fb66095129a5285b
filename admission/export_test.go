package admission

import "github.com/clocker/clocker/internal/errdefs"

var errInvalidForTest = errdefs.ErrInvalid
