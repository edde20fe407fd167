package bq

// KeyLiteral is keyLiteral, for the external tests.
var KeyLiteral = keyLiteral
