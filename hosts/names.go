package hosts

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/clocker/clocker/internal/errdefs"
)

// Words for generated container names, in Docker's adjective_surname style.
// Clocker picks names itself: engines pick theirs independently, and two
// hosts would hand out the same one.
var (
	nameAdjectives = []string{
		"admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
		"blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
		"competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
		"distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent",
		"epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty",
		"funny", "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore",
		"heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly",
		"jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest",
		"musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective",
		"optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky", "quizzical",
		"recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp", "silly",
		"sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
		"trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
		"xenodochial", "youthful", "zealous", "zen",
	}
	nameSurnames = []string{
		"agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
		"babbage", "banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha",
		"bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown",
		"carson", "cerf", "chandrasekhar", "clarke", "colden", "cori", "cray", "curie",
		"darwin", "davinci", "dijkstra", "dubinsky", "easley", "edison", "einstein", "elion",
		"engelbart", "euclid", "euler", "faraday", "fermat", "fermi", "feynman", "franklin",
		"galileo", "gates", "goldberg", "goldstine", "goodall", "hamilton", "hawking", "heisenberg",
		"hermann", "hodgkin", "hopper", "hoover", "hypatia", "jackson", "jennings", "johnson",
		"kalam", "kapitsa", "kepler", "khorana", "kilby", "knuth", "lalande", "lamarr",
		"leakey", "leavitt", "lovelace", "lumiere", "mahavira", "margulis", "mayer", "mccarthy",
		"mcclintock", "meitner", "mendel", "minsky", "mirzakhani", "morse", "napier", "newton",
		"nobel", "noether", "pare", "pascal", "pasteur", "payne", "perlman", "pike",
		"poincare", "ptolemy", "raman", "ramanujan", "ride", "ritchie", "rosalind", "saha",
		"shannon", "shockley", "sinoussi", "swartz", "tesla", "thompson", "torvalds", "turing",
		"varahamihira", "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing",
		"wozniak", "wright", "yalow", "yonath",
	}
)

// ReserveGeneratedName picks a random name no container of the fleet has,
// and reserves it as ReserveName does.
func (f *Fleet) ReserveGeneratedName(ctx context.Context) (name string, release func(), err error) {
	for try := 0; try < 100; try++ {
		name = RandomName(try)
		release, err = f.ReserveName(ctx, name)
		if errors.Is(err, errdefs.ErrConflict) {
			continue
		}
		return name, release, err
	}
	return "", nil, errdefs.New(errdefs.ErrConflict, "could not find a free container name")
}

// RandomName is a name as an engine makes one (adjective_surname), with a
// number after it from the tenth try on, when names run short.
func RandomName(try int) string {
	name := nameAdjectives[rand.IntN(len(nameAdjectives))] + "_" + nameSurnames[rand.IntN(len(nameSurnames))]
	if try >= 10 {
		name += strconv.Itoa(rand.IntN(100))
	}
	return name
}

// nameIndex is one host's container names (without the slash) to full
// IDs, as of a cache generation: names are found with one map lookup per
// host instead of a scan of every container of the fleet, and the index
// is rebuilt only when the host's cache has changed.
type nameIndex struct {
	snap atomic.Pointer[nameSnap]
}

type nameSnap struct {
	gen uint64
	ids map[string]string
}

// lookup returns the ID of h's container named name.
func (x *nameIndex) lookup(h *Host, name string) (string, bool) {
	// The generation is read before the cache: if it has not moved when
	// the snapshot is next used, nothing changed after the cache was read;
	// if it has, the snapshot is rebuilt.
	gen := h.Generation()
	s := x.snap.Load()
	if s == nil || s.gen != gen {
		s = &nameSnap{gen: gen}
		h.mu.RLock()
		s.ids = make(map[string]string, len(h.containers))
		for id, c := range h.containers {
			if h.hidden[id] {
				continue
			}
			for _, n := range c.Summary.Names {
				s.ids[strings.TrimPrefix(n, "/")] = id
			}
		}
		h.mu.RUnlock()
		x.snap.Store(s)
	}
	id, ok := s.ids[name]
	return id, ok
}
