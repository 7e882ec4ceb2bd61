# SPDX-License-Identifier: Apache-2.0
"""users - real test users for the attacks whose defence is the kernel's (uids, modes).

    users = TwoUsers()          # flipt-n<pid> (the node's user), flipt-f<pid> (the FL
    ...                         # client's), the node's user in the client's group
    users.remove()

Tests that use them run as root (the suite does). open_traversal(path) lets other
users traverse (not list) each folder from / down to path, as a tempfile.mkdtemp()
folder (0700) would otherwise stop them.
"""
import os
import pwd
import subprocess


class TwoUsers:
    """A node user and an FL client user, real system users; remove() deletes them."""

    def __init__(self):
        tag = str(os.getpid())
        self.node = "flipt-n" + tag
        self.fl = "flipt-f" + tag
        self.remove()
        for u in (self.node, self.fl):
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", u],
                           check=True, capture_output=True)
        # the node's user hands files to the client's group (the package does the same)
        subprocess.run(["usermod", "-aG", self.fl, self.node], check=True, capture_output=True)
        self.node_pw = pwd.getpwnam(self.node)
        self.fl_pw = pwd.getpwnam(self.fl)

    def remove(self):
        for u in (getattr(self, "node", None), getattr(self, "fl", None)):
            if u:
                subprocess.run(["userdel", u], capture_output=True)
                subprocess.run(["groupdel", u], capture_output=True)

    def as_user(self, name):
        """argv prefix running a command as name with its groups (util-linux setpriv)"""
        return ["setpriv", "--reuid", name, "--regid", name, "--init-groups", "--"]

    def chown_tree(self, path, name):
        pw = pwd.getpwnam(name)
        for root, dirs, files in os.walk(path):
            os.lchown(root, pw.pw_uid, pw.pw_gid)
            for f in dirs + files:
                os.lchown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


def open_traversal(path):
    """Let other users traverse (not list) every folder from / down to path."""
    p = os.path.abspath(path)
    while p != "/":
        st = os.stat(p)
        os.chmod(p, (st.st_mode & 0o7777) | 0o011)
        p = os.path.dirname(p)
