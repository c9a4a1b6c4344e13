// Package junit provides facilities for writing test results as JUnit
// XML, the report format CI systems read.
package junit
