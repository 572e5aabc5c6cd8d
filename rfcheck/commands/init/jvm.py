"""JVM and Go projects: Maven, Gradle, single-file Java workers and Go modules."""

from __future__ import annotations

import re


from rfcheck.commands.init.model import GO_WEB, Guess, JVM_WEB
from rfcheck.commands.init.project import Project, read_text


def jvm_guess(project: Project) -> tuple[Guess, int] | None:
    build = project.jvm_build
    if build is None:
        return _java_single_file(project)
    file, text = build
    web = [dep for dep in JVM_WEB if dep in text]
    spring = "spring-boot" in text
    if file == "pom.xml":
        stripped = re.sub(r"<parent>.*?</parent>|<dependencies>.*</dependencies>", "", text, flags=re.S)
        match = re.search(r"<artifactId>\s*([^<\s]+)\s*</artifactId>", stripped)
        name = match.group(1) if match else project.folder.name
        start = "mvn -q spring-boot:run -Dspring-boot.run.arguments=--server.port={port}" if spring and web \
            else "mvn -q exec:java"
    else:
        settings = next((read_text(project.folder / f) for f in ("settings.gradle.kts", "settings.gradle")
                         if (project.folder / f).is_file()), "")
        match = re.search(r"rootProject\.name\s*=\s*['\"]([^'\"]+)['\"]", settings)
        name = match.group(1) if match else project.folder.name
        gradle = "./gradlew" if (project.folder / "gradlew").is_file() else "gradle"
        start = f"{gradle} -q bootRun --args=--server.port={{port}}" if spring and web else f"{gradle} -q run"
    result = Guess(name=name, runtime="jvm", kind="web" if web else "command",
                   kind_why=", ".join(web) if web else "a JVM program without a web framework: a worker or CLI",
                   flow="authorization_code" if web else "client_credentials",
                   found=[f"{file}: " + (", ".join(web) if web else "a JVM build without a web framework")],
                   start=start, start_why=f"the {file} build runs the app", ready_timeout=120, step_timeout=60)
    return result, 2 if web else 1


def _java_single_file(project: Project) -> tuple[Guess, int] | None:
    mains = [path for path, text in project.source(".java") if "/" not in path and "static void main(" in text]
    if not mains:
        return None
    preferred = ("Main.java", "App.java", "Worker.java", "Application.java")
    mains.sort(key=lambda p: (preferred.index(p) if p in preferred else len(preferred), p))
    return Guess(name=project.folder.name, runtime="jvm", kind="command",
                 kind_why="a single-file Java program: a worker or CLI", flow="client_credentials",
                 found=[f"Java sources with a main method: {', '.join(mains)}"], start=f"java {mains[0]}",
                 start_why="Java's source launcher, which compiles on every run", step_timeout=60), 1


def go_guess(project: Project) -> tuple[Guess, int] | None:
    if project.go_mod is None:
        return None
    match = re.search(r"^module\s+(\S+)", project.go_mod, flags=re.M)
    name = match.group(1).rstrip("/").split("/")[-1] if match else project.folder.name
    web = [dep.split("/", 1)[1] for dep in GO_WEB if dep in project.go_mod]
    if not web and project.grep(re.compile(r"http\.ListenAndServe"), ".go"):
        web = ["net/http server"]
    result = Guess(name=name, runtime="go", kind="web" if web else "command",
                   kind_why=", ".join(web) if web else "a Go program without an HTTP server: a worker or CLI",
                   flow="authorization_code" if web else "client_credentials",
                   found=[f"go.mod: {', '.join(web) or 'no web framework'}"], start="go run .",
                   start_why="compiles and runs the main package, which must listen on $PORT" if web else
                   "compiles and runs the main package", ready_timeout=120 if web else 30, step_timeout=60)
    return result, 2 if web else 1
