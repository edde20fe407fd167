package pgsource

// ZoneBoundsSQL is zoneBoundsSQL.
var ZoneBoundsSQL = zoneBoundsSQL
