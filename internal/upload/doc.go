// Package upload reads the email and SMS upload files of docs/upload-format.md:
// a streaming parser and validator that holds one line at a time, plus a
// Tracker that tells which valid lines lose to a later or newer one without a
// database (for import --dry-run).
//
// Decisions where the format leaves room (each is tested):
//   - The header rule ("a first line that is rejected and has no digit in it")
//     applies to the first non-blank line, so a header after leading blank
//     lines is still called a header. The same text further down is an
//     ordinary bad line.
//   - Line ends are exactly \n and \r\n. A lone \r is content, also at the very
//     end of the file, and then fails the field it ends.
//   - A blank line is empty or holds only Unicode white space.
//   - A line longer than MaxLineBytes (line end excluded) is rejected with
//     field line without being held in memory; the format sets no limit, but a
//     valid line is far shorter.
//   - TooOld follows consent.TooOld on the timestamp alone, for every source
//     but HS_2015, which İYS takes at any time (consent.TooOldExempt).
//   - The rules tied to a source (consent.CheckSource) are a line's fault:
//     HS_2015 with another date than 01.05.2015 00:00:00 is the timestamp's,
//     HS_KARAR with ONAY the platform's.
//   - A phone of 10 digits starting with 5 is valid (a foreign number may
//     look so) and flagged MaybeMissingCountryCode.
package upload
