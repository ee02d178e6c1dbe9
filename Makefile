# Installs the C library the way C programmers expect (like libpq): a versioned shared library
# with its SONAME, the static library, the header, a pkg-config file, and the dco command.
#
#   cargo build --release
#   make install PREFIX=/usr/local          # or: make install DESTDIR=/tmp/stage PREFIX=/usr
#   cc my_prog.c $(pkg-config --cflags --libs dco)
#   make uninstall PREFIX=/usr/local
#
# The installed libraries are stripped of debug information, which goes to
# $(LIBDIR)/.debug/, where gdb looks for it (objcopy --only-keep-debug, linked back with a
# .gnu_debuglink).
# PROFILE=debug installs what `cargo build` made instead (for tests). `make install` does not
# run cargo: build first.

VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOVERSION  := 0
PROFILE    ?= release
BUILD      ?= target/$(PROFILE)
DCO_BIN    ?= $(BUILD)/dco

PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGDIR     ?= $(LIBDIR)/pkgconfig
DEBUGDIR   ?= $(LIBDIR)/.debug

SONAME     := libdco.so.$(SOVERSION)
REALNAME   := libdco.so.$(VERSION)

# What a program linked with libdco.a also needs (the Rust standard library's system libraries).
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

.PHONY: all install uninstall check-built

all:
	@echo "build with: cargo build --release; then: make install PREFIX=..."

check-built:
	@for f in $(BUILD)/libdco.so $(BUILD)/libdco.a $(DCO_BIN); do \
	  test -f $$f || { echo "$$f is missing: run cargo build$(if $(filter release,$(PROFILE)), --release,) first" >&2; exit 1; }; \
	done

install: check-built
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) \
	  $(DESTDIR)$(PKGDIR) $(DESTDIR)$(DEBUGDIR)
	objcopy --only-keep-debug $(BUILD)/libdco.so $(DESTDIR)$(DEBUGDIR)/$(REALNAME).debug
	objcopy --strip-debug --strip-unneeded \
	  --add-gnu-debuglink=$(DESTDIR)$(DEBUGDIR)/$(REALNAME).debug \
	  $(BUILD)/libdco.so $(DESTDIR)$(LIBDIR)/$(REALNAME)
	chmod 755 $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libdco.so
	objcopy --strip-debug $(BUILD)/libdco.a $(DESTDIR)$(LIBDIR)/libdco.a
	chmod 644 $(DESTDIR)$(LIBDIR)/libdco.a
	install -m 644 include/dco.h $(DESTDIR)$(INCLUDEDIR)/dco.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	  -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	  -e 's|@STATIC_LIBS@|$(STATIC_LIBS)|g' dco.pc.in > $(DESTDIR)$(PKGDIR)/dco.pc
	chmod 644 $(DESTDIR)$(PKGDIR)/dco.pc
	objcopy --strip-debug $(DCO_BIN) $(DESTDIR)$(BINDIR)/dco
	chmod 755 $(DESTDIR)$(BINDIR)/dco

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libdco.so $(DESTDIR)$(LIBDIR)/libdco.a \
	  $(DESTDIR)$(DEBUGDIR)/$(REALNAME).debug $(DESTDIR)$(INCLUDEDIR)/dco.h \
	  $(DESTDIR)$(PKGDIR)/dco.pc $(DESTDIR)$(BINDIR)/dco
