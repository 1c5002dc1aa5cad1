"""The City tree of the Trends view: Objects/City browsed lazily, a node's children asked the first time it opens."""

from __future__ import annotations

from typing import cast

from asyncua import ua
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

from hmi.client import ConsoleClient, ConsoleError
from hmi.history import ua_session
from hmi.tasks import spawn

PATH_ROLE = Qt.ItemDataRole.UserRole
CLASS_ROLE = Qt.ItemDataRole.UserRole + 1
LOADED_ROLE = Qt.ItemDataRole.UserRole + 2


class TagTree(QTreeWidget):
    """Objects/City browsed lazily: a node's children are asked for the first time it is expanded."""

    def __init__(self, client: ConsoleClient, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.setHeaderLabels(["City"])
        self.setObjectName("trendTagTree")
        self.itemExpanded.connect(self._expanded)

    async def load_root(self) -> None:
        """The first level under Objects/City."""
        self.clear()
        root = QTreeWidgetItem(["City"])
        root.setData(0, PATH_ROLE, "City")
        root.setData(0, CLASS_ROLE, int(ua.NodeClass.Object))
        self.addTopLevelItem(root)
        await self.load(root)
        root.setExpanded(True)

    def _expanded(self, item: QTreeWidgetItem) -> None:
        if not item.data(0, LOADED_ROLE):
            spawn(self.load(item), name="trend tree")

    async def load(self, item: QTreeWidgetItem) -> None:
        """Browse one node's children (objects, variables) into the tree."""
        item.setData(0, LOADED_ROLE, True)
        path = str(item.data(0, PATH_ROLE))
        try:
            node = ua_session(self.client).get_node(self.client.nodeid(path))
            refs = await node.get_children_descriptions(
                refs=ua.ObjectIds.HierarchicalReferences,
                nodeclassmask=cast(ua.NodeClass, ua.NodeClass.Object | ua.NodeClass.Variable),
            )
        except (ConsoleError, ua.UaError, OSError, TimeoutError) as exc:
            item.setData(0, LOADED_ROLE, False)
            item.setToolTip(0, f"not browsed: {exc}")
            return
        item.takeChildren()
        seen: set[str] = set()  # a node reached by two hierarchical references (Organizes, HasComponent) once
        for ref in sorted(refs, key=lambda r: r.BrowseName.Name):
            ident = ref.NodeId.Identifier
            if ref.NodeId.NamespaceIndex != self.client.ns or not isinstance(ident, str) or ident in seen:
                continue
            seen.add(ident)
            child = QTreeWidgetItem([ref.BrowseName.Name])
            child.setData(0, PATH_ROLE, ref.NodeId.Identifier)
            child.setData(0, CLASS_ROLE, int(ref.NodeClass))
            if ref.NodeClass == ua.NodeClass.Object:
                child.setChildIndicatorPolicy(QTreeWidgetItem.ChildIndicatorPolicy.ShowIndicator)
            else:
                child.setToolTip(0, f"{ref.NodeId.Identifier}: double-click to trend")
            item.addChild(child)

    def find_path(self, path: str) -> QTreeWidgetItem | None:
        """The loaded item of a path, if any."""
        for item in self.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive):
            if item.data(0, PATH_ROLE) == path:
                return item
        return None
