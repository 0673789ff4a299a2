#!/usr/bin/env python3
"""Writes a man(7) page for an ArgumentParser command from its own definitions (`TOOL --experimental-dump-help`).

    scripts/gen-man.py TOOL --section N [--date YYYY-MM-DD] [--see-also 'ragd(8)' ...] > TOOL.N

The abstract and discussion become NAME and DESCRIPTION; each subcommand (or the tool itself) gets its synopsis
and options. A discussion paragraph that is a title ending in ':' over indented `KEY  text` lines (as in
"Exit status:" or "Environment:") becomes a section of its own (EXIT STATUS, ENVIRONMENT), so `--help` and the
manual say the same. The date is --date, else $SOURCE_DATE_EPOCH, else today (reproducible builds set one).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

# Sections in the order man-pages(7) gives them; discussion sections not listed go before SEE ALSO.
ORDER = ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "SIGNALS", "ENVIRONMENT", "FILES", "EXIT STATUS"]
TITLES = {1: "User Commands", 8: "System Administration"}


def text(s):
    """Escapes running text for roff: backslashes, and a leading period or quote."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", s, flags=re.M)


def quoted(s):
    return '"' + text(s).replace('"', '\\(dq') + '"'


def parse_discussion(discussion):
    """Splits a discussion into plain paragraphs and titled lists: ([paragraph], {TITLE: [(key, text)]})."""
    paragraphs, sections = [], {}
    for block in re.split(r"\n\s*\n", discussion.strip()) if discussion else []:
        lines = block.split("\n")
        items = []
        if len(lines) > 1 and lines[0].rstrip().endswith(":") and all(l.startswith("  ") for l in lines[1:]):
            for line in lines[1:]:
                m = re.match(r"^\s{2,}(\S.*?)\s{2,}(\S.*)$", line)
                if m:
                    items.append([m.group(1), m.group(2)])
                elif items:
                    items[-1][1] += " " + line.strip()
                else:
                    items = None
                    break
            if items:
                sections[lines[0].rstrip()[:-1].upper()] = items
                continue
        paragraphs.append(" ".join(l.strip() for l in lines))
    return paragraphs, sections


def name_of(name):
    return ("-" if name["kind"] == "short" else "--") + name["name"]


def shown(arguments, root):
    """The arguments worth listing: displayed ones, without --help and --version except at the top."""
    out = []
    for a in arguments or []:
        if not a.get("shouldDisplay", True):
            continue
        names = [n["name"] for n in a.get("names", [])]
        if not root and ("help" in names or "version" in names):
            continue
        out.append(a)
    return out


def usage(argument):
    """`[--mode <mode>]`, `<query>`, `[<path>]` as in ArgumentParser's usage line."""
    value = argument.get("valueName", "value")
    if argument["kind"] == "positional":
        part = "<%s>" % value
    else:
        part = name_of(argument["preferredName"])
        if argument["kind"] == "option":
            part += " <%s>" % value
    if argument.get("isRepeating"):
        part += " ..."
    return "[%s]" % part if argument.get("isOptional") else part


def synopsis(path, arguments):
    tool, _, sub = path.partition(" ")
    out = [".SY " + text(tool)] + ([".B " + text(sub)] if sub else [])
    for a in arguments:
        if a["kind"] == "positional":
            out.append(".RI " + quoted(usage(a)))
        else:
            out.append(".OP " + " ".join(quoted(p) for p in usage(a).strip("[]").split(" ", 1)))
    out.append(".YS")
    return out


def options(arguments):
    out = []
    for a in arguments:
        if a["kind"] == "positional":
            head = "\\fI<%s>\\fR" % text(a.get("valueName", "value"))
        else:
            head = ", ".join("\\fB%s\\fR" % text(name_of(n)) for n in a.get("names", []))
            if a["kind"] == "option":
                head += " \\fI<%s>\\fR" % text(a.get("valueName", "value"))
        body = a.get("abstract", "")
        if a.get("discussion"):
            body += " " + a["discussion"]
        if a.get("defaultValue") and a["kind"] == "option" and "default" not in body:
            body = body.rstrip(".") + " (default: %s)." % a["defaultValue"]
        out += [".TP", head, text(body)]
    return out


def main():
    parser = argparse.ArgumentParser(description="Man page of an ArgumentParser tool.")
    parser.add_argument("tool")
    parser.add_argument("--section", type=int, default=1)
    parser.add_argument("--date")
    parser.add_argument("--see-also", action="append", default=[])
    args = parser.parse_args()

    info = json.loads(subprocess.run([args.tool, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout)
    command = info["command"]
    name = command["commandName"]
    version = subprocess.run([args.tool, "--version"], capture_output=True, text=True).stdout.strip()
    if args.date:
        date = args.date
    elif os.environ.get("SOURCE_DATE_EPOCH"):
        date = datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), datetime.timezone.utc).strftime("%Y-%m-%d")
    else:
        date = datetime.date.today().isoformat()

    paragraphs, extra = parse_discussion(command.get("discussion", ""))
    sections = {"NAME": [text("%s - %s" % (name, command.get("abstract", "").rstrip(".")))]}
    subcommands = [c for c in command.get("subcommands", []) if c["commandName"] != "help" and c.get("shouldDisplay", True)]
    root_arguments = shown(command.get("arguments"), root=True)
    if subcommands:
        sections["SYNOPSIS"] = [".SY " + text(name), ".I command", ".RI [ options ]", ".YS"]
    else:
        sections["SYNOPSIS"] = synopsis(name, [a for a in root_arguments if "help" not in [n["name"] for n in a.get("names", [])]
                                               and "version" not in [n["name"] for n in a.get("names", [])]])
    description = []
    for p in paragraphs:
        description += [".PP", text(p)]
    sections["DESCRIPTION"] = description[1:]
    sections["OPTIONS"] = options(root_arguments)
    if subcommands:
        out = []
        for sub in subcommands:
            path = "%s %s" % (name, sub["commandName"])
            arguments = shown(sub.get("arguments"), root=False)
            out += [".SS " + quoted(sub["commandName"])] + synopsis(path, arguments)
            sub_paragraphs, _ = parse_discussion(sub.get("discussion", ""))
            out += [".PP", text(sub.get("abstract", ""))]
            for p in sub_paragraphs:
                out += [".PP", text(p)]
            if arguments:
                out += [".PP", "Options:", ".RS"] + options(arguments) + [".RE"]
        sections["COMMANDS"] = out
    for title, items in extra.items():
        body = []
        for key, value in items:
            body += [".TP", "\\fB%s\\fR" % text(key), text(value)]
        sections[title] = body
    if args.see_also:
        refs = [re.match(r"^(.+)\((\d)\)$", ref).groups() for ref in args.see_also]
        sections["SEE ALSO"] = [",\n".join(".BR %s (%s)" % (text(n), s) for n, s in refs)]

    print('.\\" Generated by scripts/gen-man.py from `%s --experimental-dump-help`; do not edit.' % name)
    print(".TH %s %d %s %s %s" % (name.upper(), args.section, quoted(date), quoted("ragd " + version if version else "ragd"),
                                   quoted(TITLES.get(args.section, ""))))
    order = ORDER + [t for t in sections if t not in ORDER and t != "SEE ALSO"] + ["SEE ALSO"]
    for title in order:
        body = sections.get(title)
        if body:
            print(".SH " + (quoted(title) if " " in title else title))
            print("\n".join(body))


if __name__ == "__main__":
    sys.exit(main())
