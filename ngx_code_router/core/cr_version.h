/*
 * cr_version: the version of code-router, one definition for the module
 * (its build_info metric), the CLI (code-router --version) and the man
 * pages (generated from the CLI's help).  It is debian/changelog's
 * version: t/26-version.t fails if the two differ.
 */

#ifndef CR_VERSION_H
#define CR_VERSION_H

#define CR_VERSION  "0.1.0"

#endif /* CR_VERSION_H */
