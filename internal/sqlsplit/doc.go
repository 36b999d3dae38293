// Package sqlsplit owns raftlite's rules for cutting SQL text into
// statements, shared by the shell and by loading SQL dumps: a statement
// ends at a ';' outside quotes ('...', "...", `...`, [...]) and comments
// (-- and /* */), except inside the BEGIN ... END body of a CREATE TRIGGER,
// which ends only at the ';' after "; END".
//
// It lexes SQL only as far as these rules need (words, quoted strings and
// identifiers, ';' and single other characters); Tokens exposes that lexer
// to callers that look at a statement's words. Scanner reads statements one
// at a time from a stream, with memory bounded by the largest statement;
// Split cuts a string and says what is left unfinished, for input that
// arrives line by line.
package sqlsplit
