package mapping

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Locations: LEMP content "lat,lon" (decimal degrees) <-> XEP-0080 <lat/> and
// <lon/> plus an RFC 5870 geo: URI body. Coordinates are kept as the decimal
// text they were written in (no float round trip), after checking them.

// maxCoordLen bounds one coordinate's text.
const maxCoordLen = 32

// checkCoord checks a decimal coordinate (xs:decimal: optional sign, digits,
// optional fraction) within ±limit degrees and returns it trimmed.
func checkCoord(what, s string, limit float64) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	if len(s) > maxCoordLen {
		return "", fmt.Errorf("%s is longer than %d bytes", what, maxCoordLen)
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		case (c == '+' || c == '-') && i == 0:
		default:
			return "", fmt.Errorf("%s %q is not a decimal number", what, s)
		}
	}
	if digits == 0 {
		return "", fmt.Errorf("%s %q is not a decimal number", what, s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.Abs(f) > limit {
		return "", fmt.Errorf("%s %q is out of range (±%v)", what, s, limit)
	}
	return s, nil
}

// checkLatLon checks a latitude and a longitude.
func checkLatLon(lat, lon string) (string, string, error) {
	lat, err := checkCoord("latitude", lat, 90)
	if err != nil {
		return "", "", err
	}
	lon, err = checkCoord("longitude", lon, 180)
	if err != nil {
		return "", "", err
	}
	return lat, lon, nil
}

// splitLatLon parses LEMP location content "lat,lon".
func splitLatLon(c string) (lat, lon string, err error) {
	lat, lon, ok := strings.Cut(c, ",")
	if !ok {
		return "", "", fmt.Errorf("location %q is not \"lat,lon\"", truncate(c, 64))
	}
	return checkLatLon(lat, lon)
}

// parseGeoURI parses an RFC 5870 geo: URI (geo:lat,lon[,alt][;params]) and
// reports ok = false when s is not one.
func parseGeoURI(s string) (lat, lon string, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) < 4 || !strings.EqualFold(s[:4], "geo:") {
		return "", "", false
	}
	coords := s[4:]
	if i := strings.IndexAny(coords, ";?"); i >= 0 {
		coords = coords[:i]
	}
	parts := strings.Split(coords, ",")
	if len(parts) != 2 && len(parts) != 3 {
		return "", "", false
	}
	lat, lon, err := checkLatLon(parts[0], parts[1])
	if err != nil {
		return "", "", false
	}
	return lat, lon, true
}
